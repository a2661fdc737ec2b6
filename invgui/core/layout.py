"""How a layer's output is laid out, read once per representation, layer and input size.

A convolution gives C×H×W; a channels-last stage (Swin's stages, the norms and MLPs inside
ConvNeXt's blocks) gives H×W×C; a vision transformer gives tokens, N×C, where the first k are
*prefix* tokens (class, distillation, registers) and the rest a patch grid; a classifier gives a
vector.  Every consumer that needs a map — neuron windows and channels, the Φ0 pane, stride and
receptive field, the decoders — asks the layer's :class:`Layout` for it instead of assuming
C×H×W.  A layer whose layout cannot be read is ``unknown``: it still inverts as a whole, but has no
channels or windows.

Read from the output shape at a square input, with two hints from the model: whether it says its
stages are channels-last (timm's ``output_fmt == "NHWC"``), and its prefix tokens (timm's
``cls_token``, ``dist_token``, ``num_reg_tokens``, ``num_prefix_tokens``).  Where the model gives
no prefix, the smallest k ≤ 8 that leaves a square grid is taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

KINDS = ("chw", "hwc", "tokens", "vector", "unknown")
MAX_GUESSED_PREFIX = 8           # prefix tokens inferred from a shape alone (DINOv2: 1 class + 4 registers)


@dataclass(frozen=True)
class Layout:
    kind: str                                    # one of KINDS
    shape: tuple[int, ...]                       # the layer's output for one image
    prefix: tuple[tuple[str, int], ...] = ()     # tokens: ("class", 1), ("distillation", 1), ("registers", 4)

    @property
    def n_prefix(self) -> int:
        return sum(n for _, n in self.prefix)

    @property
    def channels(self) -> int:
        """Entries along the channel axis (0: none, an unknown layout)."""
        if self.kind in ("chw", "vector"):
            return self.shape[0]
        if self.kind in ("hwc", "tokens"):
            return self.shape[-1]
        return 0

    @property
    def grid(self) -> tuple[int, int] | None:
        """(rows, columns) of the spatial map or patch grid; None when there is none."""
        if self.kind == "chw":
            return self.shape[1], self.shape[2]
        if self.kind == "hwc":
            return self.shape[0], self.shape[1]
        if self.kind == "tokens":
            side = math.isqrt(self.shape[0] - self.n_prefix)
            return side, side
        return None

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """The C×H×W map every consumer sees (C for a vector, the raw shape when unknown)."""
        grid = self.grid
        return (self.channels, *grid) if grid is not None else self.shape

    def text(self) -> str:
        """As the layer tree and `invgui layers` show it."""
        if self.kind == "hwc":
            return f"{self.shape[0]}×{self.shape[1]}×{self.shape[2]} (channels last)"
        if self.kind == "tokens":
            h, w = self.grid or (0, 0)
            parts = [f"{n} {_plural(name, n)}" for name, n in self.prefix]
            return " + ".join([*parts, f"{h}×{w} patches"]) + f" × {self.channels}"
        text = "×".join(map(str, self.shape))
        return text + " (layout not read)" if self.kind == "unknown" else text

    def prefix_names(self) -> list[str]:
        """One name per prefix token: class, registers 1…4, …"""
        out = []
        for name, n in self.prefix:
            out += [name] if n == 1 else [f"{name} {i + 1}" for i in range(n)]
        return out

    # -- views of a batch N×shape ------------------------------------------------------------
    def spatial(self, phi: Any) -> Any:
        """N×C×H×W of a batch of this layer's outputs (a view where the layout allows one)."""
        if self.kind == "chw":
            return phi
        if self.kind == "hwc":
            return phi.permute(0, 3, 1, 2)
        if self.kind == "tokens":
            h, w = self.grid or (0, 0)
            return phi[:, self.n_prefix:].transpose(1, 2).unflatten(2, (h, w))
        raise ValueError(f"a layer of shape {'×'.join(map(str, self.shape))} has no spatial map")

    def prefix_tokens(self, phi: Any) -> Any:
        """N×k×C: the prefix tokens of a batch (tokens only)."""
        return phi[:, :self.n_prefix]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "shape": list(self.shape), "prefix": [[n, k] for n, k in self.prefix]}

    @classmethod
    def from_dict(cls, d: dict) -> Layout:
        kind = d.get("kind")
        if kind not in KINDS:
            raise ValueError(f"unknown layout {kind!r}")
        return cls(kind, tuple(int(v) for v in d["shape"]), tuple((str(n), int(k)) for n, k in d.get("prefix", ())))


def _plural(name: str, n: int) -> str:
    return "register" if name == "registers" and n == 1 else name


def _square(n: int) -> bool:
    return n >= 1 and math.isqrt(n) ** 2 == n


def plain(shape: tuple[int, ...]) -> Layout:
    """The layout of a representation without a model to ask: C×H×W, a vector, or unknown."""
    shape = tuple(shape)
    return Layout({3: "chw", 1: "vector"}.get(len(shape), "unknown"), shape)


def detect(shape: tuple[int, ...], *, channels_last: bool = False,
           prefix: tuple[tuple[str, int], ...] = ()) -> Layout:
    """The layout of an output of ``shape`` (one image, square input), with the model's hints."""
    shape = tuple(shape)
    if len(shape) == 3:
        a, b, c = shape
        # At a square input the two spatial sides are equal: that tells H×W×C from C×H×W, unless
        # all three are (or none), where the model's word decides.
        hwc = channels_last if (a == b) == (b == c) else a == b
        return Layout("hwc" if hwc else "chw", shape)
    if len(shape) == 2:
        n = shape[0]
        k = sum(count for _, count in prefix)
        if prefix and n > k and _square(n - k):
            return Layout("tokens", shape, tuple(prefix))
        if _square(n) and n > 1:
            return Layout("tokens", shape)                  # the patch embedding: no prefix yet
        guess = next((k for k in range(1, MAX_GUESSED_PREFIX + 1) if n - k >= 4 and _square(n - k)), None)
        if guess is not None:
            return Layout("tokens", shape, (("prefix", guess),))
        return Layout("unknown", shape)
    return plain(shape)


def model_hints(model: Any) -> dict:
    """``channels_last`` and ``prefix`` as a timm model states them (nothing for other models)."""
    prefix: list[tuple[str, int]] = []
    if getattr(model, "cls_token", None) is not None:
        prefix.append(("class", 1))
    if getattr(model, "dist_token", None) is not None:
        prefix.append(("distillation", 1))
    regs = int(getattr(model, "num_reg_tokens", 0) or 0)
    if regs:
        prefix.append(("registers", regs))
    stated = getattr(model, "num_prefix_tokens", None)
    if isinstance(stated, int) and stated != sum(n for _, n in prefix):
        prefix = [("prefix", stated)] if stated else []
    return {"channels_last": str(getattr(model, "output_fmt", "")).upper() == "NHWC", "prefix": tuple(prefix)}


def window_cells(layout: Layout, x0: int, y0: int, x1: int, y1: int) -> list[int]:
    """Token indices of the patch cells in a window (tokens only; prefix tokens come first)."""
    _, w = layout.grid or (0, 0)
    return [layout.n_prefix + y * w + x for y in range(y0, y1) for x in range(x0, x1)]
