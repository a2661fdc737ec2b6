"""What every method shares, below the methods and the registry: a :class:`RunRequest` (the
pure data of one reconstruction), :class:`Prepared` (a request with everything read), and
:class:`Method` (what the registry says of one method).  Pure data: no torch, no numpy, so the
command line's ``--help`` can list the methods in a fraction of a second.

The methods themselves (``optimize``, ``decoder.run``, ``probe``, ``hybrid``) each give one
entry function, ``run_request(prep, should_stop, **options) -> Iterator[Event]``, that
:meth:`Method.run` imports the first time a request of that method runs.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog import FRAMINGS, check_size
from ..errors import InvguiError
from ..params import Presets, check, from_dict, to_dict
from .optimize_params import PRESETS, OptimizeParams
from .probe_params import ProbeParams

if TYPE_CHECKING:
    import numpy as np

    from ..events import Event

DEFAULT_IMAGE = "sample:chelsea"
DEFAULT_METHOD = "optimize"      # the one method name written here: a request's default


@dataclass(frozen=True)
class Method:
    """One reconstruction method, as everything outside it needs to know it.  The registry
    (:mod:`.registry`) holds one per method; nothing else compares method names."""

    name: str                        # RunRequest.method, the CLI's --method, sessions
    title: str                       # the window's chooser
    word: str                        # captions, legends, run lines: "optimisation", "decoder", …
    entry: str                       # "module:function" running a Prepared request (imported when first run)
    params_cls: type | None = None   # the class of RunRequest.params (None: the method takes none)
    presets: Presets | None = None   # named instances of params_cls
    uses_decoder: bool = False       # reads a trained decoder (RunRequest.decoder, or the shipped one)
    optimises: bool = False          # gradient descent on the image: a differentiable representation,
                                     # iterations, restarts, the live loss terms
    terms: tuple[str, ...] = ()      # the loss terms its Steps report, drawn live
    metric_keys: tuple[str, ...] = ()   # what a saved result of it must hold (the session reader checks)
    in_window: bool = True           # offered by the window's chooser, `invgui invert --method` and sweeps
    batchable: bool = False          # requests differing in image / neuron subset share one batch
    one_image: bool = False          # takes exactly one image
    needs_probe: bool = False        # RunRequest.probe must be given
    help: str = ""                   # one sentence for --help

    @property
    def from_decoder(self) -> bool:
        """The optimisation starts from the decoder's reconstruction (its start settings do not apply)."""
        return self.uses_decoder and self.optimises

    @property
    def one_pass(self) -> bool:
        """One forward pass of a decoder: no iterations, no live curves."""
        return self.uses_decoder and not self.optimises

    def what(self, params: dict[str, Any]) -> str:
        """The run list's word for what a run does: its objective (invert, maximise, caricature)
        when it optimises from noise, else the method's name."""
        return str(params.get("objective", "invert")) if self.optimises and not self.uses_decoder else self.name

    def run(self, prep: Prepared, should_stop: Callable[[], bool] | None = None,
            **options: Any) -> Iterator[Event]:
        module, _, function = self.entry.partition(":")
        return getattr(importlib.import_module(module), function)(prep, should_stop, **options)


# Filled by :mod:`.registry` (imported by this package's __init__, so always before any lookup).
METHODS: dict[str, Method] = {}


def register(spec: Method) -> Method:
    METHODS[spec.name] = spec
    return spec


def method(name: str) -> Method:
    """The method called ``name``; a :class:`RequestError` naming the known ones otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise RequestError(f"method {name!r}: use one of {', '.join(METHODS)}") from None


class RequestError(InvguiError):
    """A request that cannot run as asked; the message says why and what to do."""


@dataclass(frozen=True)
class RunRequest:
    """Everything one reconstruction needs.  ``params`` are the optimisation parameters
    (``OptimizeParams``; for a probe, those of its optional optimisation row; for ``hybrid``, those
    of its second stage), ``probe`` the probe's (``ProbeParams``); ``rep_params`` a hand-crafted
    representation's own parameters as ``(name, value)`` pairs; ``size`` the decoder's / probe's /
    hybrid's input side (0: the decoder's own).  ``hybrid``: the decoder's reconstruction starts
    the optimisation (paper 001's and paper 000's methods in series)."""

    method: str = DEFAULT_METHOD                      # a name of METHODS
    model: str = ""                                   # "" = the default; an nn.Module becomes python:CLASS@HASH
    layer: str | None = None                          # None = the representation's (or decoder's) default
    images: tuple[str, ...] = (DEFAULT_IMAGE,)        # sources: paths or sample:NAME
    params: Any = None                                # OptimizeParams (None = the default preset)
    rep_params: tuple[tuple[str, Any], ...] = ()
    weights: str | None = None
    random_weights: bool = False
    device: str = "auto"
    decoder: str | None = None                        # checkpoint (None = the shipped one, if any)
    size: int = 0
    eval_size: int = 0                                # PSNR/SSIM/NRE against the original at this side
    probe: Any = None                                 # ProbeParams for method="probe"
    target_features: str | None = None                # invert these features (a feature file) instead
    eval_set: str | None = None                       # folder (or "samples") defining paper 001's N
    trust_torchscript: bool = False
    framing: str = "crop"                             # a non-square image: its centre square, or padded (fit)

    def __post_init__(self) -> None:
        if self.model is not None and not isinstance(self.model, str):
            # A torch.nn.Module from Python: registered under a name that says its class and the
            # hash of its weights, which records and sessions keep (core.representations.modules).
            from ..representations.modules import register_module

            object.__setattr__(self, "model", register_module(self.model))
        self._check_types()

    def _check_types(self) -> None:
        """The fields' types checked at the door, as the command line checks its flags: a str for
        ``images`` was read one character at a time, a dict of parameters failed deep in a run.
        Paths become str, a list of images a tuple, ``params`` given as a preset name or a dict the
        method's parameters."""
        import os

        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        def text(name: str, optional: bool) -> None:
            v = getattr(self, name)
            if isinstance(v, os.PathLike):
                put(name, os.fspath(v))
            elif not (isinstance(v, str) or (optional and v is None)):
                raise RequestError(f"{name}: expected {'a str or None' if optional else 'a str'}, got "
                                   f"{type(v).__name__}")

        for name in ("method", "device", "framing"):
            text(name, optional=False)
        for name in ("model", "layer", "weights", "decoder", "target_features", "eval_set"):   # model None: default
            text(name, optional=True)
        for name in ("size", "eval_size"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                got = type(getattr(self, name)).__name__
                raise RequestError(f"{name}: expected a whole number of pixels, got {got}")
        for name in ("random_weights", "trust_torchscript"):
            if not isinstance(getattr(self, name), bool):
                raise RequestError(f"{name}: expected True or False, got {type(getattr(self, name)).__name__}")
        images = self.images
        if isinstance(images, (str, os.PathLike)):
            raise RequestError("images: expected a tuple of sources, e.g. images=('photo.png',), not one "
                               f"{type(images).__name__} (it would be read one character at a time)")
        if not isinstance(images, (tuple, list)):
            raise RequestError("images: expected a tuple of sources (paths or sample:NAME), got "
                               f"{type(images).__name__}")
        if not all(isinstance(s, (str, os.PathLike)) for s in images):
            bad = next(s for s in images if not isinstance(s, (str, os.PathLike)))
            raise RequestError(f"images: each is a path or sample:NAME, not a {type(bad).__name__} (an array: save it "
                               "as a PNG first, or open it with invgui.show(image=array))")
        put("images", tuple(os.fspath(s) for s in images))
        if isinstance(self.rep_params, dict):
            put("rep_params", freeze_params(self.rep_params))
        try:
            spec = method(self.method)
        except InvguiError:
            return                                  # an unknown method: validate() says so
        if self.params is not None and spec.params_cls is not None:
            if isinstance(self.params, str):
                put("params", PRESETS.get(self.params))
            elif isinstance(self.params, dict):
                put("params", from_dict(spec.params_cls, self.params))
            elif not isinstance(self.params, spec.params_cls):
                raise RequestError(f"params: expected {spec.params_cls.__name__} (or a preset name, or a dict of its "
                                   f"fields), got {type(self.params).__name__}")
        if self.probe is not None and not isinstance(self.probe, ProbeParams):
            if not isinstance(self.probe, dict):
                raise RequestError(f"probe: expected ProbeParams (or a dict of its fields), got "
                                   f"{type(self.probe).__name__}")
            put("probe", from_dict(ProbeParams, self.probe))

    # -- conveniences ---------------------------------------------------------------------------
    @property
    def image(self) -> str:
        return self.images[0] if self.images else ""

    def rep_params_dict(self) -> dict[str, Any] | None:
        return dict(self.rep_params) if self.rep_params else None

    @property
    def spec(self) -> Method:
        """The method this request runs (:data:`METHODS`); a RequestError for an unknown name."""
        return method(self.method)

    def optimize_params(self) -> OptimizeParams:
        """The optimisation parameters (a probe's optional row, a hybrid's second stage): ``params``,
        or the first preset."""
        return self.params if self.params is not None else PRESETS.get(PRESETS.names()[0])

    def replace(self, **changes: Any) -> RunRequest:
        if "rep_params" in changes and isinstance(changes["rep_params"], dict):
            changes["rep_params"] = freeze_params(changes["rep_params"])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (sessions, records)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["images"] = list(self.images)
        d["params"] = to_dict(self.params) if self.params is not None else None
        d["probe"] = to_dict(self.probe) if self.probe is not None else None
        d["rep_params"] = self.rep_params_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRequest:
        d = dict(d)
        if d.get("params") is not None:
            params_cls = method(d.get("method", DEFAULT_METHOD)).params_cls or OptimizeParams
            d["params"] = from_dict(params_cls, d["params"])
        if d.get("probe") is not None:
            d["probe"] = from_dict(ProbeParams, d["probe"])
        d["images"] = tuple(d.get("images") or ())
        d["rep_params"] = freeze_params(d.get("rep_params"))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def validate(self) -> RunRequest:
        """``self`` when its own fields are consistent; a :class:`RequestError` otherwise (files,
        layers and sizes are checked by :func:`prepare`, which reads them)."""
        spec = self.spec
        if not self.images and self.target_features is None:
            raise RequestError("give an image or target features")
        if len(self.images) > 1 and spec.one_image:
            raise RequestError(f"a {spec.word} takes one image; give one image")
        if len(self.images) > 1 and self.target_features:
            raise RequestError("with target features the image only serves the metrics; give at most one image")
        if spec.needs_probe and self.probe is None:
            raise RequestError(f"a {spec.word} request needs its probe parameters")
        if self.params is not None:
            check(self.params, "optimisation parameters")
        if self.probe is not None:
            check(self.probe, "probe parameters")
        check_size(self.size)
        check_size(self.eval_size)
        if self.framing not in FRAMINGS:
            raise RequestError(f"framing {self.framing!r}: use one of {', '.join(FRAMINGS)}")
        return self


def freeze_params(values: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((str(k), v) for k, v in (values or {}).items()))


@dataclass
class Prepared:
    """A request with everything read and resolved: what :func:`run_prepared` computes with."""

    request: RunRequest
    rep: Any                                          # Representation
    layer: str
    device: str
    images: list[np.ndarray] = field(default_factory=list)   # each framed (images.frame) as asked
    target_features: Any = None                       # torch.Tensor
    eval_distance: float | None = None
    decoder: Any = None                               # decoder.Loaded
    decoder_file: str | None = None
    size: int = 0                                     # the input side the run computes at
    eval_size: int = 0                                # the side its image metrics are computed at
    notes: list[str] = field(default_factory=list)    # choices made for the user, to tell them
    regions: list[dict] = field(default_factory=list)  # per image: the part the method sees (input_region)

    @property
    def source(self) -> str:
        """What the outputs are named after: the image, or the feature file's name."""
        if self.images and self.request.images:
            return self.request.image
        return Path(self.request.target_features or "features").stem


