"""Requests from the window's settings: what Run, Sweep and Probe hand to the controller.
A setting that cannot make a request (no decoder for the layer, optimisation of a
non-differentiable representation, an invalid parameter) becomes a dialog that says why."""

from __future__ import annotations

from ..core.methods import optimize
from ..core.methods.registry import DECODER, PROBE
from ..core.session import Run
from ..core.state import CannotRun
from .compare_view import SweepContext


class Requests:
    def __init__(self, window):
        self.w = window

    def request(self, sweep: bool = False, name: str | None = None) -> Run | None:
        """A Run from the current settings (``core.state.WindowState.run``: method ``name``, default
        the chosen one), or None with a dialog saying why; ``sweep``: the optimisation template of a
        sweep whatever the method."""
        w = self.w
        try:
            return w.state.run(name or w.method(), w.form.values, size=w._size(),
                               random_weights=w.random_weights.isChecked(), decoder=w.decoder_panel.current(),
                               decoder_size=int(w.decoder_panel.size.value()), sweep=sweep)
        except CannotRun as e:
            w.show_error(e.title, str(e))
        except ValueError as e:               # a parameter the form cannot read
            w.show_error("Invalid parameters", str(e))
        return None

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
        run = self.request(name=DECODER.name)
        if run is None:
            return False
        try:
            pp = w.decoder_panel.probe_form.values()
        except ValueError as e:
            w.show_error("Invalid probe parameters", str(e))
            return False
        req = run.request.replace(device=w.device, method=PROBE.name, probe=pp, params=optimize.PRESETS.get("fast"))
        w.probe_pane.set_title(f"Probe — {pp.probe} (running)")
        w.probe_pane.show()
        w.controller.submit_probe(req, {w.image_source: w.image})   # framed by prepare (req.framing)
        w._update_buttons()
        return True
