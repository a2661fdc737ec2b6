"""What the window shows of the target features before any run: Φ0 (one channel at the chosen
layer), the representation's own picture of it (HOG glyphs, SIFT keypoints, LBP codes) and the
layer's receptive field in the tree.  Each is computed on the background thread (a forward pass
of a deep layer, or a backward pass for the receptive field, takes tens to hundreds of
milliseconds) and shown when it arrives — only if the settings it was computed for still hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core import representations as R
from ..core.images import frame, image_batch


class FeatureDisplay:
    """On narrow inputs: the window's state (representation, layer, image, framing), the
    background thread, and callables for the input side, the *Channels* field, the result view
    (its Φ0 and feature-picture panes) and the layer tree."""

    def __init__(self, state, background, *, size: Callable[[], int], channels: Callable[[], str],
                 view: Callable[[], Any], tree: Callable[[], Any]):
        self.state, self.background = state, background
        self.size, self.channels, self.view, self.tree = size, channels, view, tree
        self._fmap_key: tuple | None = None
        self._visual_key: tuple | None = None

    def invalidate(self) -> None:
        self._fmap_key = self._visual_key = None

    def update(self) -> None:
        """Φ0 and the representation's picture for the current settings (computed when they changed)."""
        st = self.state
        if st.rep is None or st.image is None:
            return
        rep, image, size, layer = st.rep, frame(st.image, st.framing), self.size(), st.layer
        key = (rep.name, repr(rep.params), size, st.image_source, id(st.image), st.framing)
        if key != self._visual_key:
            self._visual_key = key
            self.background.submit("visual", lambda: R.feature_picture(rep, image, size), self._on_visual)
        channels = self.channels()
        key = (rep.name, rep.weights_info, layer, size, st.image_source, id(st.image), st.framing, channels)
        if key != self._fmap_key:
            self._fmap_key = key

            def fmap():
                return _feature_map(rep, image, size, layer, _first_channel(rep, layer, size, channels))

            self.background.submit("fmap", fmap, self._on_fmap)

    def _on_visual(self, picture, error) -> None:
        view, rep = self.view(), self.state.rep
        if isinstance(error, R.RepresentationError):
            view.show_visual(None, f"Features — {error}")
        elif error is not None:
            raise error
        else:
            view.show_visual(picture, f"Features — {rep.title}")

    def _on_fmap(self, value, error) -> None:
        pane = self.view().feature_pane
        if isinstance(error, R.RepresentationError):
            pane.set_map(None, f"Feature map — {error}")
        elif error is not None:
            raise error
        else:
            pane.set_map(*value)

    def receptive_field(self) -> None:
        """Receptive fields of the chosen layer and of every row in view of the layer tree (one
        backward pass each, on the background thread; remembered for the process, so a second
        window or a return to the model costs nothing)."""
        st = self.state
        tree = self.tree()
        rep, size = st.rep, self.size()
        if rep is None or tree.rep_name != rep.name or tree.shapes_size != size:
            return                                   # the tree shows another model's (or size's) rows
        base = (rep.name, rep.weights_info, repr(rep.params), size)
        rows = list(dict.fromkeys([st.layer, *tree.rows_in_view()]))
        for name in rows:
            if (*base, name) in _RF:
                tree.set_receptive_field(name, _RF[(*base, name)])
        missing = [name for name in rows if (*base, name) not in _RF]
        if not missing:
            return

        def done(value, _error) -> None:
            for name, rf in (value or {}).items():
                _RF[(*base, name)] = rf
                if tree.rep_name == rep.name and tree.shapes_size == size:
                    tree.set_receptive_field(name, rf)

        self.background.submit("rf", lambda: rep.receptive_fields(missing, size), done)


# Receptive field per (model, weights, parameters, input size, layer): a property of the network,
# the same for every window of the process.
_RF: dict[tuple, int | None] = {}


def _feature_map(rep, image, size: int, layer: str, channel: int):
    """(map, title) of one channel of Φ0 at ``layer`` on its map — a transformer's patch grid, a
    channels-last stage's cells — with the prefix tokens' values in the title (map None: the layer
    has no spatial map)."""
    import torch

    lay = rep.layer_info(layer, size).layout
    with torch.no_grad():
        phi = rep.features(image_batch(image, size), layer)
    if lay.grid is None:
        return None, f"Feature map — {layer} has no spatial map ({lay.text()})"
    fmap = lay.spatial(phi)[0, channel]
    h, w = lay.grid
    title = f"Φ0 — {layer} channel {channel}/{lay.channels} ({w}×{h}{' patches' if lay.kind == 'tokens' else ''})"
    if lay.n_prefix:
        values = lay.prefix_tokens(phi)[0, :, channel].tolist()
        shown = ", ".join(f"{name} {v:.3g}" for name, v in zip(lay.prefix_names()[:5], values, strict=False))
        title += f" · {shown}{' …' if len(values) > 5 else ''}"
    return fmap.numpy(), title


def _first_channel(rep, layer: str, size: int, channels: str) -> int:
    """The first channel the Channels field selects at ``layer`` (0 if none or invalid).  Needs the
    layer's shape at ``size`` — a forward pass when the size is new: on the background thread."""
    from ..core.subsets import SubsetError, parse_channels

    lay = rep.layer_info(layer, size).layout
    if not lay.channels:
        return 0
    try:
        return parse_channels(channels, lay.channels)[0]
    except SubsetError:
        return 0
