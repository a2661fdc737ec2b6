"""Requests from the window's settings: what Run, Sweep and Probe hand to the controller.
A setting that cannot make a request (no decoder for the layer, optimisation of a
non-differentiable representation, an invalid parameter) becomes a dialog that says why."""

from __future__ import annotations

from ...core.methods import optimize_params as optimize
from ...core.methods.registry import DECODER, PROBE
from ...core.session import Run
from ...core.state import CannotRun, SweepContext


class Requests:
    """The Run, Sweep and Probe buttons' requests, made from the window's state
    (``WindowState.run``) and the method page ``page`` (its form's parameters, the probe form)."""

    def __init__(self, ctx, page):
        self.ctx, self.controller, self.state, self.page = ctx, ctx.controller, ctx.state, page

    def request(self, sweep: bool = False, name: str | None = None) -> Run | None:
        """A Run from the current settings (``core.state.WindowState.run``: method ``name``, default
        the chosen one), or None with a dialog saying why; ``sweep``: the optimisation template of a
        sweep whatever the method."""
        try:
            return self.state.run(name, self.page.form.values, sweep=sweep)
        except CannotRun as e:
            self.ctx.show_error(e.title, str(e))
        except ValueError as e:               # a parameter the form cannot read
            self.ctx.show_error("Invalid parameters", str(e))
        return None

    def sweep_context(self) -> SweepContext | None:
        """What a sweep in the comparison view starts from: the window's current settings."""
        if self.state.rep is None or self.request(sweep=True) is None:     # (says why)
            return None
        return self.state.sweep_context(self.page.form.values)

    def probe(self) -> str | None:
        """Manipulate Φ0 as the probe form says and reconstruct every variant with the decoder; the
        probe pane's title while it runs (None: no probe started, a dialog said why)."""
        st = self.state
        if self.controller.running() or st.image is None or st.rep is None:
            return None
        run = self.request(name=DECODER.name)
        if run is None:
            return None
        try:
            pp = self.page.decoder_panel.probe_form.values()
        except ValueError as e:
            self.ctx.show_error("Invalid probe parameters", str(e))
            return None
        req = PROBE.request(run.request, params=optimize.PRESETS.get("fast"), probe=pp, device=st.device)
        self.controller.submit_probe(req, {st.image_source: st.image})   # framed by prepare (req.framing)
        return f"Probe — {pp.probe} (running)"
