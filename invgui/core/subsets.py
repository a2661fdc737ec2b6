"""Neuron subsets: which entries of a feature map an objective looks at.

Spatial windows (in feature-map cells):
  ``""``               every position
  ``"centre:N"``       the centre N×N cells (M&V's ``neigh``); ``centre:1`` is the centre neuron
  ``"x0,y0,x1,y1"``    any rectangle, half-open: columns x0…x1−1, rows y0…y1−1

Channels:
  ``""``               every channel
  ``"5"``, ``"0,5,7"``, ``"10-20"`` (inclusive), combinations such as ``"0-3,8"``
  ``"first-half"``, ``"second-half"`` (M&V's ``filterGroup``)
"""

from __future__ import annotations

import torch

from .errors import InvguiError
from .layout import Layout, plain, window_cells


class SubsetError(InvguiError):
    pass


def parse_channels(spec: str, n: int) -> list[int]:
    spec = spec.strip().lower()
    if not spec:
        return list(range(n))
    if spec in ("first-half", "first_half"):
        return list(range(n // 2))
    if spec in ("second-half", "second_half"):
        return list(range(n // 2, n))
    out: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                out.extend(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise SubsetError(f"channels {spec!r}: {part!r} is not a channel number or range "
                              "(use e.g. 5, 0,5,7, 10-20, first-half)") from None
    bad = [c for c in out if not 0 <= c < n]
    if bad:
        raise SubsetError(f"channels {spec!r}: {bad[0]} is outside 0…{n - 1} (this layer has {n} channels)")
    if not out:
        raise SubsetError(f"channels {spec!r} selects no channel")
    return sorted(set(out))


def parse_window(spec: str, h: int, w: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), half-open, in feature-map cells."""
    spec = spec.strip().lower()
    if not spec:
        return 0, 0, w, h
    if spec.startswith(("centre:", "center:")):
        try:
            k = int(spec.split(":", 1)[1])
        except ValueError:
            raise SubsetError(f"window {spec!r}: use centre:N with an integer N") from None
        if not 1 <= k <= min(h, w):
            raise SubsetError(f"window {spec!r}: N must be between 1 and {min(h, w)} for a {w}×{h} feature map")
        y0, x0 = (h - k) // 2, (w - k) // 2
        return x0, y0, x0 + k, y0 + k
    try:
        x0, y0, x1, y1 = (int(v) for v in spec.split(","))
    except ValueError:
        raise SubsetError(f"window {spec!r}: use centre:N or x0,y0,x1,y1") from None
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise SubsetError(f"window {spec!r} does not fit the {w}×{h} feature map (x in 0…{w}, y in 0…{h}, "
                          "x0 < x1, y0 < y1)")
    return x0, y0, x1, y1


def mask(layout: Layout | tuple[int, ...], channels: str = "", window: str = "") -> torch.Tensor | None:
    """A float mask of the layer's output shape, or None when everything is selected.

    ``layout`` (a :class:`~invgui.core.layout.Layout`, or a shape read as C×H×W / C) says where the
    channels and the spatial cells are: a window selects cells of the map (the patch grid of a
    transformer: prefix tokens are outside every window); channels alone select those channels
    everywhere, prefix tokens included."""
    if not channels.strip() and not window.strip():
        return None
    lay = layout if isinstance(layout, Layout) else plain(tuple(layout))
    shape = lay.shape
    if lay.kind == "unknown":
        raise SubsetError(f"this layer's output ({'×'.join(map(str, shape))}) has no channels or map invgui can "
                          "read; it inverts as a whole: leave Channels and Window empty")
    m = torch.zeros(shape)
    chans = parse_channels(channels, lay.channels)
    grid = lay.grid
    if grid is None:
        if window.strip():
            raise SubsetError(f"window {window!r}: this layer has no spatial dimensions ({lay.text()})")
        m[chans] = 1.0
        return m
    if not window.strip() and lay.kind == "tokens":
        m[:, chans] = 1.0
        return m
    x0, y0, x1, y1 = parse_window(window, *grid)
    if lay.kind == "chw":
        m[chans, y0:y1, x0:x1] = 1.0
    elif lay.kind == "hwc":
        m[y0:y1, x0:x1][..., chans] = 1.0
    else:
        cells = torch.tensor(window_cells(lay, x0, y0, x1, y1))
        m[cells[:, None], torch.tensor(chans)[None]] = 1.0
    return m
