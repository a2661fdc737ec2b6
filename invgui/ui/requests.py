"""Requests from the window's settings: what Run, Sweep and Probe hand to the controller.
A setting that cannot make a request (no decoder for the layer, optimisation of a
non-differentiable representation, an invalid parameter) becomes a dialog that says why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.methods import optimize
from ..core.methods.registry import DECODER, PROBE
from ..core.session import Run
from ..core.state import CannotRun
from .compare_view import SweepContext


class Requests:
    """On narrow inputs: the controller, the window's state (what the run is built from:
    ``WindowState.run``), the method page (the chosen method, its form, the decoder page), and
    callables for the input side, the *Random weights* box, errors and a started probe."""

    def __init__(self, controller, state, *, page: Callable[[], Any], size: Callable[[], int],
                 random_weights: Callable[[], bool], show_error: Callable[[str, str], None],
                 probe_started: Callable[[str], None]):
        self.controller, self.state, self.page = controller, state, page
        self.size, self.random_weights, self.show_error, self.probe_started = (size, random_weights, show_error,
                                                                               probe_started)

    def request(self, sweep: bool = False, name: str | None = None) -> Run | None:
        """A Run from the current settings (``core.state.WindowState.run``: method ``name``, default
        the chosen one), or None with a dialog saying why; ``sweep``: the optimisation template of a
        sweep whatever the method."""
        page = self.page()
        try:
            return self.state.run(name or page.method(), page.form.values, size=self.size(),
                                  random_weights=self.random_weights(), decoder=page.decoder_panel.current(),
                                  decoder_size=int(page.decoder_panel.size.value()), sweep=sweep)
        except CannotRun as e:
            self.show_error(e.title, str(e))
        except ValueError as e:               # a parameter the form cannot read
            self.show_error("Invalid parameters", str(e))
        return None

    def sweep_context(self) -> SweepContext | None:
        """What a sweep in the comparison view starts from: the window's current settings."""
        st = self.state
        template = self.request(sweep=True) if st.rep is not None else None
        return None if template is None else SweepContext(template, st.rep, self.size(), st.layer,
                                                          self.page().decoder_panel.current())

    def probe(self) -> bool:
        """Manipulate Φ0 as the probe form says and reconstruct every variant with the decoder."""
        st = self.state
        if self.controller.running() or st.image is None or st.rep is None:
            return False
        run = self.request(name=DECODER.name)
        if run is None:
            return False
        try:
            pp = self.page().decoder_panel.probe_form.values()
        except ValueError as e:
            self.show_error("Invalid probe parameters", str(e))
            return False
        req = run.request.replace(device=st.device, method=PROBE.name, probe=pp, params=optimize.PRESETS.get("fast"))
        self.controller.submit_probe(req, {st.image_source: st.image})   # framed by prepare (req.framing)
        self.probe_started(f"Probe — {pp.probe} (running)")
        return True
