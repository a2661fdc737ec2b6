"""Requests from the window's settings: what Run, Sweep and Probe hand to the controller.
A setting that cannot make a request (no decoder for the layer, optimisation of a
non-differentiable representation, an invalid parameter) becomes a dialog that says why."""

from __future__ import annotations

from ..core.methods import optimize
from ..core.methods.registry import DECODER, OPTIMIZE, PROBE, method
from ..core.params import to_dict
from ..core.session import Run
from .compare_view import SweepContext


class Requests:
    def __init__(self, window):
        self.w = window

    def request(self, sweep: bool = False) -> Run | None:
        """A Run from the current settings, or None (with a dialog saying why); ``sweep``: the
        optimisation template of a sweep whatever the method."""
        w = self.w
        spec = OPTIMIZE if sweep else method(w.method())
        if spec.one_pass:
            path = self.decoder_or_error()
            return None if path is None else self.decoder_run(path)
        if spec.optimises and not w.rep.differentiable and not sweep:
            w.show_error("Optimisation cannot invert this representation",
                         f"{w.rep.title}: {w.rep.decoder_hint}. Choose *Decoder* as the method.")
            return None
        try:
            params = to_dict(w.form.values())
        except ValueError as e:
            w.show_error("Invalid parameters", str(e))
            return None
        if spec.uses_decoder:
            path = self.decoder_or_error()          # the decoder page's choice starts the optimisation
            if path is None:
                return None
            return Run.of(method=spec.name, params=params, decoder=path, size=int(params.get("size") or 0),
                       **self.base())
        return Run.of(method=spec.name, params=params, **self.base(),
                   **({"size": int(w.decoder_panel.size.value())} if sweep else {}))

    def base(self) -> dict:
        """What every request takes from the window: representation, layer, image, weights."""
        w = self.w
        return dict(model=w.rep.name, layer=w.layer, image=w.image_source,
                    rep_params=to_dict(w.rep.params) if w.rep.params is not None else None,
                    weights=w.weights_path, random_weights=w.random_weights.isChecked(),
                    eval_size=w._size(),             # every method's metrics at the window's size
                    framing=w.framing)

    def decoder_run(self, path: str) -> Run:
        return Run.of(method=DECODER.name, decoder=path, size=int(self.w.decoder_panel.size.value()), **self.base())

    def decoder_or_error(self) -> str | None:
        w = self.w
        path = w.decoder_panel.current()
        if path is None:
            w.show_error("No decoder", f"There is no decoder for {w.rep.name} {w.layer} yet: open a decoder "
                         "file, or train one (Run › Train a decoder…).")
        return path

    def sweep_context(self) -> SweepContext | None:
        """What a sweep in the comparison view starts from: the window's current settings."""
        w = self.w
        template = self.request(sweep=True) if w.rep is not None else None
        return None if template is None else SweepContext(template, w.rep, w._size(), w.layer,
                                                          w.decoder_panel.current())

    def probe(self) -> bool:
        """Manipulate Φ0 as the probe form says and reconstruct every variant with the decoder."""
        w = self.w
        if w.running() or w.image is None or w.rep is None:
            return False
        path = self.decoder_or_error()
        if path is None:
            return False
        try:
            pp = w.decoder_panel.probe_form.values()
        except ValueError as e:
            w.show_error("Invalid probe parameters", str(e))
            return False
        req = self.decoder_run(path).request.replace(device=w.device, method=PROBE.name, probe=pp,
                                                               params=optimize.PRESETS.get("fast"))
        w.probe_pane.set_title(f"Probe — {pp.probe} (running)")
        w.probe_pane.show()
        w.controller.submit_probe(req, {w.image_source: w.image})   # framed by prepare (req.framing)
        w._update_buttons()
        return True
