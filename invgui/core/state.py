"""What the window is set to, without Qt — as napari's ``ViewerModel`` is to its ``QtViewer``.

:class:`WindowState` holds the window's own state (the representation and its weights, the layer,
the open image and how it is framed, the device, the run whose result is shown, that result, the
last probe's) and
tells its listeners what changed.  :meth:`WindowState.run` is what the Run button queues, computed
here from the state and the method page's values, so it is tested without a window; a setting
that cannot make a run raises :class:`CannotRun` with a title and what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import InvguiError
from .methods.registry import DEFAULT_METHOD, OPTIMIZE, method
from .params import to_dict
from .session import Run


class CannotRun(InvguiError):
    """The window's settings make no run; ``title`` heads the dialog, the message says what to do."""

    def __init__(self, title: str, message: str):
        super().__init__(message)
        self.title = title


_OBSERVED = ("rep", "layer", "image", "image_source", "framing", "device", "shown_run", "result", "probe_result")


@dataclass(eq=False)
class WindowState:
    rep: Any = None                        # the Representation the window shows
    layer: str = ""
    image: Any = None                      # the open image (H×W×3 float), None before one is open
    image_source: str = ""                 # its path or sample:NAME
    framing: str = "crop"                  # a non-square image: its centre square, or padded ("fit")
    device: str = "auto"
    shown_run: Run | None = None           # the run whose result the panes show
    result: Any = None                     # that result (or the live one), None when nothing is shown
    probe_result: Any = None               # the last probe's result (its strip in the probe pane)
    weights: dict[str, str] = field(default_factory=dict)    # an explicit weight file per model name
    listeners: list[Callable[[str], None]] = field(default_factory=list)

    def __setattr__(self, name: str, value: Any) -> None:
        changed = name in _OBSERVED and self.__dict__.get(name, None) is not value
        super().__setattr__(name, value)
        if changed:
            for listener in self.__dict__.get("listeners", ()):
                listener(name)

    @property
    def weights_path(self) -> str | None:
        """The explicit weight file of the current model (None: its own weights)."""
        return self.weights.get(self.rep.name) if self.rep is not None else None

    def base(self, size: int, random_weights: bool) -> dict[str, Any]:
        """What every run takes from the window: representation, layer, image, weights, framing,
        and the side its metrics are measured at (every method's at the window's)."""
        rep = self.rep
        return dict(model=rep.name, layer=self.layer, image=self.image_source,
                    rep_params=to_dict(rep.params) if rep.params is not None else None,
                    weights=self.weights_path, random_weights=random_weights, eval_size=size,
                    framing=self.framing)

    def need(self, decoder: str | None) -> str:
        """``decoder``, or CannotRun saying there is none for this layer yet."""
        if decoder is None:
            raise CannotRun("No decoder", f"There is no decoder for {self.rep.name} {self.layer} yet: open a "
                            "decoder file, or train one (Run › Train a decoder…).")
        return decoder

    def run(self, name: str, params: Any, *, size: int, random_weights: bool, decoder: str | None,
            decoder_size: int, sweep: bool = False) -> Run:
        """The run the Run button queues: method ``name`` with the method page's ``params`` (an
        ``OptimizeParams``, or a callable giving it: read only when the method takes them), the
        decoder page's ``decoder`` and ``decoder_size``; ``sweep``: the optimisation template of a
        sweep, whatever the method.  CannotRun when the settings make none."""
        spec = OPTIMIZE if sweep else method(name)
        base = self.base(size, random_weights)
        if spec.one_pass:
            return Run.of(method=spec.name, decoder=self.need(decoder), size=decoder_size, **base)
        if spec.optimises and not self.rep.differentiable and not sweep:
            raise CannotRun("Optimisation cannot invert this representation",
                            f"{self.rep.title}: {self.rep.decoder_hint}. Choose *Decoder* as the method.")
        values = to_dict(params() if callable(params) else params)   # a form's reader: read only when needed
        if spec.uses_decoder:             # the decoder page's choice starts the optimisation
            decoder = self.need(decoder)
            return Run.of(method=spec.name, params=values, decoder=decoder, size=int(values.get("size") or 0),
                          **base)
        extra: dict[str, Any] = {"size": decoder_size} if sweep else {}    # the sweep's decoder runs' size
        return Run.of(method=spec.name, params=values, **base, **extra)


__all__ = ["WindowState", "CannotRun", "DEFAULT_METHOD"]
