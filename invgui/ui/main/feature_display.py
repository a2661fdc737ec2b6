"""What the window shows of the target features before any run: Φ0 (one channel at the chosen
layer), the representation's own picture of it (HOG glyphs, SIFT keypoints, LBP codes) and the
layer's receptive field in the tree.  Each is computed on the background thread (a forward pass
of a deep layer, or a backward pass for the receptive field, takes tens to hundreds of
milliseconds) and shown when it arrives — only if the settings it was computed for still hold."""

from __future__ import annotations

from ...core import representations as R
from ...core.images import frame, image_batch
from ...core.results import where
from ...core.state import subscribe


class FeatureDisplay:
    """The Φ0 pane, the feature-picture pane and the receptive fields in the layer tree, drawn
    from the window's state alone: it subscribes to the fields they depend on in its constructor.
    What the panes draw is ``state.shown()``: the shown run's layer, side and preprocessed image
    when a run is shown (a decoder run at 96 px shows its 96-px map), the window's choice
    otherwise — and each title says which."""

    DRAWS_FROM = ("rep", "layer", "image", "framing", "size", "channels", "shown_run", "result")

    def __init__(self, ctx, view, tree):
        self.state, self.background, self.view, self.tree = ctx.state, ctx.background, view, tree
        self._fmap_key: tuple | None = None
        self._visual_key: tuple | None = None
        subscribe(self.state, self.DRAWS_FROM, self.update)
        subscribe(self.state, ("rep", "layer", "size"), self.receptive_field)

    def _source(self) -> tuple | None:
        """(representation, image at its side, side, layer, shown) the panes draw, or (None, why, …)
        when the shown run's representation is not the window's."""
        st = self.state
        shown = st.shown()
        if shown is None or st.image is None or st.rep is None:
            return None                                # (the model still loading: drawn when it arrives)
        if not shown.of_run:
            return st.rep, frame(st.image, st.framing), shown.size, shown.layer, shown
        if not st.is_window_rep(shown):
            return None, (f"of {where(shown.model, shown.layer)} — the shown run's representation is not the "
                          f"window's ({st.rep.name}); choose it to see this map"), 0, shown.layer, shown
        if shown.target is not None:
            return st.rep, shown.target, shown.size, shown.layer, shown
        if shown.image == st.image_source and shown.size:
            return st.rep, frame(st.image, st.framing), shown.size, shown.layer, shown
        return None, f"of {where(shown.model, shown.layer)} — shown when the run has its first result", 0, \
            shown.layer, shown

    def update(self) -> None:
        """Φ0 and the representation's picture for what is shown (computed when it changed)."""
        src = self._source()
        if src is None:
            return
        rep, image, size, layer, shown = src
        suffix = f" · {shown.whose}"
        if rep is None:
            # Through the background thread too: an answer still computing for the previous
            # settings is dropped (a newer job of its kind supersedes it), not drawn after this.
            self._fmap_key = self._visual_key = None
            self.background.submit("visual", lambda: None, lambda *_: self.view.show_visual(None, f"Features {image}"))
            self.background.submit("fmap", lambda: None,
                                   lambda *_: self.view.feature_pane.set_map(None, f"Φ0 {image}"))
            return
        visual_key = (id(rep), size, id(image), shown.image, self.state.framing)
        if visual_key != self._visual_key:
            self._visual_key = visual_key
            self.background.submit("visual", lambda: R.feature_picture(rep, image, size),
                                   lambda v, e: self._on_visual(rep, suffix, v, e))
        channels = self.state.channels
        fmap_key = (id(rep), layer, *visual_key[1:], channels, suffix)
        if fmap_key != self._fmap_key:
            self._fmap_key = fmap_key

            def fmap():
                return _feature_map(rep, image, size, layer, _first_channel(rep, layer, size, channels))

            self.background.submit("fmap", fmap, lambda v, e: self._on_fmap(suffix, v, e))

    def _on_visual(self, rep, suffix: str, picture, error) -> None:
        if isinstance(error, R.RepresentationError):
            self.view.show_visual(None, f"Features — {error}")
        elif error is not None:
            raise error
        else:
            self.view.show_visual(picture, f"Features — {rep.title}{suffix}")

    def _on_fmap(self, suffix: str, value, error) -> None:
        pane = self.view.feature_pane
        if isinstance(error, R.RepresentationError):
            pane.set_map(None, f"Feature map — {error}")
        elif error is not None:
            raise error
        else:
            fmap, title = value
            pane.set_map(fmap, title + suffix)

    def receptive_field(self) -> None:
        """Receptive fields of the chosen layer and of every row in view of the layer tree (one
        backward pass each, on the background thread; remembered for the process, so a second
        window or a return to the model costs nothing)."""
        st = self.state
        tree = self.tree
        rep, size = st.rep, st.input_side
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
    from ...core.subsets import SubsetError, parse_channels

    lay = rep.layer_info(layer, size).layout
    if not lay.channels:
        return 0
    try:
        return parse_channels(channels, lay.channels)[0]
    except SubsetError:
        return 0
