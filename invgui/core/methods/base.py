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
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog import FRAMINGS, check_size
from ..errors import InvguiError
from ..params import Presets, check, from_dict, to_dict
from .captions import OPTIMISED, Caption
from .optimize_params import PRESETS, OptimizeParams
from .probe_params import ProbeParams

if TYPE_CHECKING:
    import numpy as np

    from ..events import Event

DEFAULT_IMAGE = "sample:chelsea"
DEFAULT_METHOD = "optimize"      # the one method name written here: a request's default


Entry = Any        # "module:function" (imported when first used), or the function itself (a method defined
                   # in a script or a test)

KEEP: Any = object()    # Method.request: this field as the template has it
PARAMETERS_PAGE, DECODER_PAGE = "parameters", "decoder file"      # Method.page


def _call(entry: Entry) -> Callable[..., Any]:
    if callable(entry):
        return entry
    module, _, function = str(entry).partition(":")
    return getattr(importlib.import_module(module), function)


@dataclass(frozen=True)
class Method:
    """One reconstruction method: what everything outside it needs to know of it, and what it does
    itself — read what a request needs (:meth:`prepare`), make its requests (:meth:`request`), run
    them (:meth:`run`), tell its results (``caption``).  The registry (:mod:`.registry`) holds one
    per method; nothing else compares method names, and code outside ``core/methods`` asks these
    behaviours rather than the capability fields below."""

    name: str                        # RunRequest.method, the CLI's --method, sessions
    title: str                       # the window's chooser
    word: str                        # captions, legends, run lines: "optimisation", "decoder", …
    entry: Entry                     # runs a Prepared request: run_request(prep, should_stop, **options)
    preparer: Entry = "invgui.core.methods.base:prepare_layer"   # prepare(prep, features): layer, side, decoder
    caption: Caption = OPTIMISED     # how its results are told (methods.captions)
    page: str = PARAMETERS_PAGE      # the window's page for its settings: its parameters' form, or
                                     # DECODER_PAGE (the decoder file and its side)
    params_cls: type | None = None   # the class of RunRequest.params (None: the method takes none)
    presets: Presets | None = None   # named instances of params_cls
    uses_decoder: bool = False       # reads a trained decoder (RunRequest.decoder, or the shipped one)
    optimises: bool = False          # gradient descent on the image: a differentiable representation,
                                     # iterations, restarts, the live loss terms
    terms: tuple[str, ...] = ()      # the loss terms its Steps report, drawn live
    metric_keys: tuple[str, ...] = ()   # what a saved result of it must hold (the session reader checks)
    record_keys: tuple[str, ...] = ()   # text its saved record must hold (the session reader checks)
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

    def sweep_choice(self) -> tuple[str, str, bool]:
        """The comparison view's box for it in a sweep: label, tooltip, ticked at first (all but
        the methods that start from a decoder's output: slower, a second look at that decoder)."""
        where = " (where one fits)" if self.one_pass else ""
        tip = self.help[:1].upper() + self.help[1:] + (" (where a decoder fits)" if self.uses_decoder else "")
        return self.word + where, tip, not self.from_decoder

    def what(self, params: dict[str, Any]) -> str:
        """The run list's word for what a run does: its objective (invert, maximise, caricature)
        when it optimises from noise, else the method's name."""
        return str(params.get("objective", "invert")) if self.optimises and not self.uses_decoder else self.name

    # -- what the method does ------------------------------------------------------------------
    def request(self, template: RunRequest, *, params: Any = KEEP, decoder: Any = KEEP, size: Any = KEEP,
                **changes: Any) -> RunRequest:
        """THE place a request of this method is made: ``template`` (what the caller fixes — model,
        layer, images, weights, sides, device …, and ``changes`` to it) run by this method.
        ``params``: its parameters (an instance, a dict of fields or a preset name; dropped when it
        takes none; not given: the template's when they are of its class).  ``decoder`` and
        ``size`` (the decoder's input side, 0 its own) where it reads a decoder, dropped where it
        does not (a decoder chosen for another method never rides along; an optimisation's side
        is its parameters'); an optimisation that starts from a decoder runs both stages at its
        parameters' side unless ``size`` is given."""
        if self.params_cls is None:
            params = None
        elif params is KEEP:
            params = template.params if isinstance(template.params, self.params_cls) else None
        if not self.uses_decoder:
            decoder, size = None, 0
        elif decoder is KEEP:
            decoder = template.decoder
        out = template.replace(method=self.name, params=params, decoder=decoder, **changes)
        if size is KEEP and self.from_decoder:
            size = out.optimize_params().size
        return out if size is KEEP else out.replace(size=int(size))

    def prepare(self, prep: Prepared, features: Any = None) -> None:
        """Fill in what this method reads for ``prep`` (its layer, input side, decoder), checking
        them: :func:`invgui.core.request.prepare` has read the rest (representation, images, the
        feature file ``features``)."""
        _call(self.preparer)(prep, features)

    def run(self, prep: Prepared, should_stop: Callable[[], bool] | None = None,
            **options: Any) -> Iterator[Event]:
        return _call(self.entry)(prep, should_stop, **options)

    def refuses(self, rep: Any) -> str:
        """Why this method cannot run on representation ``rep`` ("" when it can): optimisation
        needs gradients through it."""
        if self.optimises and not rep.differentiable:
            return f"{rep.title}: {rep.decoder_hint}. Choose *Decoder* as the method."
        return ""

    def side(self, request: RunRequest, own: int) -> int:
        """The input side a request of this method asks for; ``own`` (the representation's) where
        it asks for none — but a decoder's own side is not known before it is read: 0."""
        if self.one_pass or self.params_cls is None:
            return int(request.size) or (0 if self.one_pass else own)
        return int(request.optimize_params().size or 0) or own

    def batch_key(self, request: RunRequest) -> tuple | None:
        """Requests with equal keys can run as one batch: optimisation of images at one layer of
        one representation with the same parameters but for the neuron subset (channels, window).
        None: the request runs alone (decoders and probes are one forward pass already; a feature
        file is its own target)."""
        if not self.batchable or request.target_features or request.eval_set:
            return None
        p = dataclasses.replace(request.optimize_params(), channels="", window="")
        return (rep_key(request), request.layer or "", json.dumps(to_dict(p), sort_keys=True, default=str))

    def chunks(self, n: int, params: Any) -> list[range]:
        """How ``n`` images of one layer are split into runs when many are evaluated: batches of
        images × restarts for optimisation, ``PASS_IMAGES`` a forward pass for a decoder."""
        if self.batchable:
            return batches(n, params.restarts)
        return [range(i, min(i + PASS_IMAGES, n)) for i in range(0, n, PASS_IMAGES)]


PASS_IMAGES = 16        # images a decoder's forward pass takes when many are evaluated

# Most batch rows (items × restarts) one batch holds; callers split longer lists (batches()).
MAX_BATCH_ROWS = 64


def batches(n_items: int, restarts: int, limit: int | None = None) -> list[range]:
    """Consecutive item ranges whose rows (items × restarts) fit in ``limit`` (default
    ``MAX_BATCH_ROWS``; at least one item each)."""
    per = max(1, (limit or MAX_BATCH_ROWS) // max(1, restarts))
    return [range(i, min(i + per, n_items)) for i in range(0, n_items, per)]


def rep_key(request: RunRequest) -> tuple:
    """What identifies the representation a request runs on (and where): requests with the same
    key can share one built representation."""
    from ..device import DeviceError, resolve_device

    try:
        device = resolve_device(request.device)        # "auto" on a machine without a GPU is "cpu"
    except DeviceError:
        device = request.device                        # prepare() will say what is wrong with it
    return (request.model or "", request.weights or "", bool(request.random_weights),
            json.dumps(request.rep_params_dict(), sort_keys=True, default=str), device)


def fit_size(prep: Prepared, size: int) -> int:
    """The side ``prep``'s representation computes at for an asked ``size``: a model made for one
    size only takes that size, a patch model a multiple of its patch; what changed is said in the
    notes (the run's log and record)."""
    fitted, note = prep.rep.fit_size(size)
    if note:
        prep.notes.append(note)
    return fitted


def prepare_layer(prep: Prepared, features: Any = None) -> None:
    """The preparation of a method that reads no decoder: the layer asked for (or the feature
    file's), at the side its parameters ask for (or the feature file's, or the representation's)."""
    rep, request = prep.rep, prep.request
    asked = request.spec.side(request, 0)
    prep.size = fit_size(prep, asked or rep.input_size)
    meta = features.meta if features is not None else {}
    prep.layer = rep.resolve_layer(request.layer or meta.get("layer"))
    if features is not None and not asked and meta.get("input_size"):
        prep.size = int(meta["input_size"])


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


