"""What the window shows of the target features before any run: Φ0 (one channel at the chosen
layer), the representation's own picture of it (HOG glyphs, SIFT keypoints, LBP codes) and the
layer's receptive field in the tree.  Each is computed on the background thread (a forward pass
of a deep layer, or a backward pass for the receptive field, takes tens to hundreds of
milliseconds) and shown when it arrives — only if the settings it was computed for still hold."""

from __future__ import annotations

from ..core import representations as R
from ..core.images import frame, image_batch


class FeatureDisplay:
    def __init__(self, window):
        self.w = window
        self._fmap_key: tuple | None = None
        self._visual_key: tuple | None = None
        self._rf_cache: dict[tuple, int | None] = {}      # receptive field per (model, weights, layer, size)

    def invalidate(self) -> None:
        self._fmap_key = self._visual_key = None

    def update(self) -> None:
        """Φ0 and the representation's picture for the current settings (computed when they changed)."""
        w = self.w
        if w.rep is None or w.image is None:
            return
        rep, image, size, layer = w.rep, frame(w.image, w.framing), w._size(), w.layer
        key = (rep.name, repr(rep.params), size, w.image_source, id(w.image), w.framing)
        if key != self._visual_key:
            self._visual_key = key
            w.background.submit("visual", lambda: R.feature_picture(rep, image, size), self._on_visual)
        channels = w.form.widgets["channels"].text()
        key = (rep.name, rep.weights_info, layer, size, w.image_source, id(w.image), w.framing, channels)
        if key != self._fmap_key:
            self._fmap_key = key

            def fmap():
                return _feature_map(rep, image, size, layer, _first_channel(rep, layer, size, channels))

            w.background.submit("fmap", fmap, self._on_fmap)

    def _on_visual(self, picture, error) -> None:
        view, rep = self.w.view, self.w.rep
        if isinstance(error, R.RepresentationError):
            view.show_visual(None, f"Features — {error}")
        elif error is not None:
            raise error
        else:
            view.show_visual(picture, f"Features — {rep.title}")

    def _on_fmap(self, value, error) -> None:
        pane = self.w.feature_pane
        if isinstance(error, R.RepresentationError):
            pane.set_map(None, f"Feature map — {error}")
        elif error is not None:
            raise error
        else:
            pane.set_map(*value)

    def receptive_field(self) -> None:
        """The chosen layer's receptive field (one backward pass, cached) in the tree."""
        w = self.w
        rep, layer, size = w.rep, w.layer, w._size()
        key = (rep.name, rep.weights_info, layer, size)
        if key in self._rf_cache:
            w.layer_tree.set_receptive_field(layer, self._rf_cache[key])
            return

        def compute():
            try:
                return rep.receptive_field(layer, size)
            except Exception:           # a layer that does not fit, a model that cannot backpropagate
                return None

        def done(value, _error) -> None:
            self._rf_cache[key] = value
            if w.layer == layer:
                w.layer_tree.set_receptive_field(layer, value)

        w.background.submit("rf", compute, done)


def _feature_map(rep, image, size: int, layer: str, channel: int):
    """(map, title) of one channel of Φ0 at ``layer`` (map None: the layer has no spatial map)."""
    import torch

    with torch.no_grad():
        phi = rep.features(image_batch(image, size), layer)[0]
    if phi.dim() != 3:
        return None, f"Feature map — {layer} has no spatial map ({phi.shape[0]} values)"
    return phi[channel].numpy(), f"Φ0 — {layer} channel {channel}/{phi.shape[0]} ({phi.shape[2]}×{phi.shape[1]})"


def _first_channel(rep, layer: str, size: int, channels: str) -> int:
    """The first channel the Channels field selects at ``layer`` (0 if none or invalid).  Needs the
    layer's shape at ``size`` — a forward pass when the size is new: on the background thread."""
    from ..core.subsets import SubsetError, parse_channels

    info = rep.layer_info(layer, size)
    if not info.shape:
        return 0
    try:
        return parse_channels(channels, info.shape[0])[0]
    except SubsetError:
        return 0
