"""What the window is set to, without Qt — as napari's ``ViewerModel`` is to its ``QtViewer``.

:class:`WindowState` holds everything a view of the window draws from: the representation and
its weights, the layer, the open image and how it is framed, the input side, the *Channels*
field, the method page and its decoder choice, the device, the run whose result is shown, that
result and the last probe's.  Each field is observed on its own: ``state.events.layer.connect(fn)``
calls ``fn(new, old)`` (or ``fn(new)``, psygnal trims the arguments) after ``state.layer = …`` changed
it.  The views of ``invgui.ui`` subscribe in their constructors and redraw from the state alone,
so setting a field is all a change has to do — no view waits to be told by hand.

psygnal's evented dataclass is what magicgui and napari use for this (pure Python, Qt-free,
per-field signals that skip equal values); we use it rather than a module of our own because it
already does what ours would (arity trimming, blocking, a group signal for "anything changed")
and is tested by those projects.  Fields holding objects (the representation, the image, runs,
results) are compared by identity, not ``==``: an image array compared element-wise each time it
is set would cost a pass over the pixels, and a new array with the same pixels is still news.

What the panes draw is derived here too (:meth:`WindowState.shown`: the shown run's layer, side,
image and decoder when a run is shown, the window's choice otherwise), and what a change of
choice takes down (:meth:`WindowState.stale`), so both are tested without a window.
:meth:`WindowState.run` is what the Run button queues; a setting that cannot make a run raises
:class:`CannotRun` with a title and what to do.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from psygnal import SignalGroupDescriptor

from .errors import InvguiError
from .methods.base import DECODER_PAGE, KEEP, RunRequest, freeze_params
from .methods.registry import DEFAULT_METHOD, OPTIMIZE, method, names
from .params import to_dict
from .session import Run

if TYPE_CHECKING:                          # (building representations imports torch: not at run time)
    from .events import Result
    from .representations.base import Representation


class CannotRun(InvguiError):
    """The window's settings make no run; ``title`` heads the dialog, the message says what to do."""

    def __init__(self, title: str, message: str):
        super().__init__(message)
        self.title = title


# Objects are news when they are other objects (see the module's docstring); strings, numbers and
# dicts of strings when they differ.
_BY_IDENTITY = ("rep", "image", "shown_run", "result", "probe_result")


@dataclass(frozen=True)
class Shown:
    """What the Φ0 pane and the panes' titles draw from: the shown run's representation, layer,
    input side, image and decoder when a run is shown (``of_run``), else the window's choice."""

    model: str
    layer: str
    size: int                    # the side the run computed at (0: not known yet, a decoder's own)
    image: str                   # the image's source
    decoder: str | None
    of_run: bool
    target: np.ndarray | None = None   # the run's preprocessed original (None: the window's image)
    rep_params: dict[str, Any] | None = None     # the representation's own parameters (hand-crafted ones)
    weights: tuple[bool, str | None] = (False, None)   # (random weights, weight file)

    @property
    def whose(self) -> str:
        """How a title says which: the shown run's, or the window's choice (the next run's)."""
        return "the shown run's" if self.of_run else "the window's choice"


@dataclass(frozen=True)
class SweepContext:
    """What a sweep in the comparison view starts from: the window's current settings."""

    template: Run                   # an optimisation run with the current settings
    rep: Any                        # the representation (layers, resolve_layer)
    size: int                       # the input side
    layer: str                      # the chosen layer
    decoder: str | None             # the decoder chosen for that layer, if any
    decoder_size: int = 0           # the decoder page's side (0: none chosen)


@dataclass(eq=False)
class WindowState:
    events: ClassVar[SignalGroupDescriptor] = SignalGroupDescriptor(
        equality_operators={name: operator.is_ for name in _BY_IDENTITY})

    rep: Representation | None = None      # the representation the window shows (None while it loads)
    layer: str = ""
    image: np.ndarray | None = None        # the open image (H×W×3 float), None before one is open
    image_source: str = ""                 # its path or sample:NAME
    framing: str = "crop"                  # a non-square image: its centre square, or padded ("fit")
    size: int = 0                          # the input side chosen in the form (0: the representation's own)
    channels: str = ""                     # the Channels field (the Φ0 pane shows its first channel)
    random_weights: bool = False
    device: str = "auto"
    method: str = DEFAULT_METHOD           # the method page
    decoder: str | None = None             # the decoder page's choice for this layer (None: there is none)
    decoder_size: int = 0                  # the decoder page's side (0: the decoder's own)
    shown_run: Run | None = None           # the run whose result the panes show
    result: Result | None = None           # that result (or None: the live one computes, or nothing)
    probe_result: Result | None = None     # the last probe's result (its strip in the probe pane)
    weights: dict[str, str] = field(default_factory=dict)    # an explicit weight file per model name
    _keep: int = field(default=0, init=False, repr=False, compare=False)    # > 0 inside keeping_shown()

    def __setattr__(self, name: str, value: Any) -> None:
        _check(name, value)
        super().__setattr__(name, value)

    # -- changing several fields as one ---------------------------------------------------------
    def set(self, **values: Any) -> None:
        """Set several fields, then tell their listeners — so none of them sees a half-made state
        (a new representation with the old one's layer)."""
        for name, value in values.items():       # all or nothing: none set when one is refused
            _check(name, value)
        old = {name: getattr(self, name) for name in values}
        with self.events.blocked():
            for name, value in values.items():
                setattr(self, name, value)
        for name, before in old.items():
            now = getattr(self, name)
            same = now is before if name in _BY_IDENTITY else _equal(now, before)
            if not same:
                getattr(self.events, name).emit(now, before)

    @contextlib.contextmanager
    def keeping_shown(self) -> Iterator[None]:
        """Changes made inside do not take down the shown run (``stale`` says nothing): the
        default model arriving after a restored run, which the window then follows."""
        self._keep += 1
        try:
            yield
        finally:
            self._keep -= 1

    # -- derived -------------------------------------------------------------------------------
    @property
    def weights_path(self) -> str | None:
        """The explicit weight file of the current model (None: its own weights)."""
        return self.weights.get(self.rep.name) if self.rep is not None else None

    @property
    def input_side(self) -> int:
        """The side the next run computes at: the form's size, else the representation's own."""
        return int(self.size) or (self.rep.input_size if self.rep is not None else 224)

    def shown(self) -> Shown | None:
        """What the panes draw from (None before a representation and an image are there)."""
        run, res = self.shown_run, self.result
        if run is not None:
            rec = res.record if res is not None else {}
            size = int(rec.get("input_size") or 0) or method(run.method).side(run.request, self.rep.input_size
                                                                                if self.rep else 0)
            return Shown(model=str(rec.get("representation") or run.model), layer=str(rec.get("layer") or run.layer),
                         size=size, image=run.image, decoder=run.decoder,
                         of_run=True, target=res.target if res is not None else None,
                         rep_params=run.rep_params or None, weights=(bool(run.random_weights), run.weights))
        if self.rep is None:
            return None
        return Shown(model=self.rep.name, layer=self.layer, size=self.input_side, image=self.image_source,
                     decoder=self.decoder if method(self.method).uses_decoder else None, of_run=False)

    def is_window_rep(self, shown: Shown) -> bool:
        """Whether the window's representation is the one ``shown`` was computed with (name, own
        parameters, weights): then its Φ0 can be drawn with it."""
        rep = self.rep
        if rep is None or rep.name != shown.model:
            return False
        mine = (rep.describe().get("representation_params") or None, (self.random_weights, self.weights_path))
        return mine == (shown.rep_params, shown.weights) or rep.params is not None and mine[0] == shown.rep_params

    def stale(self) -> tuple[bool, bool]:
        """(the shown result, the probe strip) when they belong to other settings than the window's
        representation, layer and image — what a change of choice takes down so it is not left up
        as if it were this one's.  A running run is never taken down (the panes follow it)."""
        if self.rep is None or self._keep:
            return False, False
        probe = self.probe_result
        probe_stale = probe is not None and (probe.record.get("representation"), probe.record.get("layer")) != (
            self.rep.name, self.layer)
        res = self.result
        if res is None or (self.shown_run is not None and self.shown_run.state == "running"):
            return False, probe_stale
        rec = res.record
        image = self.shown_run.image if self.shown_run is not None else self.image_source
        return (rec.get("representation"), rec.get("layer"), image) != (self.loaded().name, self.layer,
                                                                        self.image_source), probe_stale

    # -- what Run queues -----------------------------------------------------------------------
    def loaded(self) -> Representation:
        """The representation, or CannotRun while it is still loading."""
        if self.rep is None:
            raise CannotRun("The model is loading", "The representation is still being loaded: run again "
                            "in a moment.")
        return self.rep

    def template(self, size: int | None = None, random_weights: bool | None = None) -> RunRequest:
        """What every run takes from the window: representation, layer, image, weights, framing,
        and the side its metrics are measured at (every method's at the window's)."""
        rep = self.loaded()
        return RunRequest(model=rep.name, layer=self.layer, images=(self.image_source,),
                          rep_params=freeze_params(to_dict(rep.params) if rep.params is not None else None),
                          weights=self.weights_path,
                          random_weights=self.random_weights if random_weights is None else random_weights,
                          eval_size=self.input_side if size is None else size, framing=self.framing)

    def need(self, decoder: str | None) -> str:
        """``decoder``, or CannotRun saying there is none for this layer yet."""
        if decoder is None:
            raise CannotRun("No decoder", f"There is no decoder for {self.loaded().name} {self.layer} yet: open a "
                            "decoder file, or train one (Run › Train a decoder…).")
        return decoder

    def run(self, name: str | None, params: Any, *, size: int | None = None, random_weights: bool | None = None,
            decoder: str | None = None, decoder_size: int | None = None, sweep: bool = False) -> Run:
        """The run the Run button queues: method ``name`` (default: the method page's) with its
        ``params`` (an ``OptimizeParams``, or a callable giving it: read only when the method takes
        them); the side, random weights, decoder and decoder side are the state's unless given.
        ``sweep``: the optimisation template of a sweep, whatever the method.  CannotRun when the
        settings make none."""
        spec = OPTIMIZE if sweep else method(name or self.method)
        template = self.template(size, random_weights)
        if not sweep and (why := spec.refuses(self.loaded())):
            raise CannotRun("Optimisation cannot invert this representation", why)
        if spec.uses_decoder:
            decoder = self.need(self.decoder if decoder is None else decoder)
        values = to_dict(params() if callable(params) else params) if spec.params_cls is not None else None
        # The side box of the method's page: the decoder page's for a decoder, else the form's.
        side = (self.decoder_size if decoder_size is None else decoder_size) if spec.page == DECODER_PAGE else KEEP
        return Run(request=spec.request(template, params=values, decoder=decoder, size=side))

    def sweep_context(self, params: Any) -> SweepContext:
        """What a sweep starts from: the optimisation template with the form's ``params``."""
        return SweepContext(self.run(None, params, sweep=True), self.rep, self.input_side, self.layer, self.decoder,
                            self.decoder_size)


def _check(name: str, value: Any) -> None:
    """A value no view can draw is refused before anyone is told (a script's `state.method =
    "nope"` raised deep inside a view's redraw instead)."""
    if name == "method" and value not in names(in_window=True):
        raise InvguiError(f"method {value!r}: the window offers {', '.join(names(in_window=True))}")
    if name == "framing" and value not in ("crop", "fit"):
        raise InvguiError(f"framing {value!r}: crop or fit")


def _equal(a: Any, b: Any) -> bool:
    return a is b or (not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray) and a == b)


OBSERVED = tuple(f.name for f in fields(WindowState) if not f.name.startswith("_"))


def subscribe(state: WindowState, names: tuple[str, ...], fn: Callable[[], Any]) -> None:
    """Call ``fn()`` after any of the fields ``names`` changed (a view that redraws from the
    whole state whichever of its fields moved)."""
    for name in names:
        getattr(state.events, name).connect(fn)


__all__ = ["WindowState", "CannotRun", "Shown", "SweepContext", "OBSERVED", "subscribe", "DEFAULT_METHOD"]
