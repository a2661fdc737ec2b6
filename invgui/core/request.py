"""The application model under the window and the command line: one frozen :class:`RunRequest`
says everything a reconstruction needs, and :func:`execute` turns it into events.

The CLI builds requests from flags, the window from its widgets, sweeps from a template request,
tests and benchmarks by hand — and all of them run them the same way::

    for ev in execute(RunRequest(model="hog", images=("sample:coffee",), params=PRESETS.get("fast"))):
        ...

:func:`prepare` does the part that can fail on bad input (building the representation, reading
the images, feature files and decoder, resolving the layer, the size and the device) without
computing anything, so a caller can check what it will write before minutes of optimisation.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .events import Event, Result, Status, Step
from .images import FRAMINGS
from .params import check, from_dict, to_dict

METHODS = ("optimize", "decoder", "probe", "hybrid")
DEFAULT_IMAGE = "sample:chelsea"


class RequestError(ValueError):
    """A request that cannot run as asked; the message says why and what to do."""


@dataclass(frozen=True)
class RunRequest:
    """Everything one reconstruction needs.  ``params`` are the optimisation parameters
    (``OptimizeParams``; for a probe, those of its optional optimisation row; for ``hybrid``, those
    of its second stage), ``probe`` the probe's (``ProbeParams``); ``rep_params`` a hand-crafted
    representation's own parameters as ``(name, value)`` pairs; ``size`` the decoder's / probe's /
    hybrid's input side (0: the decoder's own).  ``hybrid``: the decoder's reconstruction starts
    the optimisation (paper 001's and paper 000's methods in series)."""

    method: str = "optimize"
    model: str = ""                                   # "" = the default representation
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

    # -- conveniences ---------------------------------------------------------------------------
    @property
    def image(self) -> str:
        return self.images[0] if self.images else ""

    def rep_params_dict(self) -> dict[str, Any] | None:
        return dict(self.rep_params) if self.rep_params else None

    def optimize_params(self):
        from .methods.optimize import PRESETS

        return self.params if self.params is not None else PRESETS.get(PRESETS.names()[0])

    def replace(self, **changes: Any) -> "RunRequest":
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
    def from_dict(cls, d: dict[str, Any]) -> "RunRequest":
        from .methods.optimize import OptimizeParams
        from .methods.probe import ProbeParams

        d = dict(d)
        if d.get("params") is not None:
            d["params"] = from_dict(OptimizeParams, d["params"])
        if d.get("probe") is not None:
            d["probe"] = from_dict(ProbeParams, d["probe"])
        d["images"] = tuple(d.get("images") or ())
        d["rep_params"] = freeze_params(d.get("rep_params"))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def validate(self) -> "RunRequest":
        """``self`` when its own fields are consistent; a :class:`RequestError` otherwise (files,
        layers and sizes are checked by :func:`prepare`, which reads them)."""
        from .representations import check_size

        if self.method not in METHODS:
            raise RequestError(f"method {self.method!r}: use one of {', '.join(METHODS)}")
        if not self.images and self.target_features is None:
            raise RequestError("give an image or target features")
        if len(self.images) > 1 and self.method == "probe":
            raise RequestError("a probe manipulates the features of one image; give one image")
        if len(self.images) > 1 and self.target_features:
            raise RequestError("with target features the image only serves the metrics; give at most one image")
        if self.method == "probe" and self.probe is None:
            raise RequestError("a probe request needs its probe parameters")
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
    images: list[np.ndarray] = field(default_factory=list)
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


def prepare(request: RunRequest, *, images: dict[str, np.ndarray] | None = None, rep=None,
            on_skip: Callable[[Exception], None] | None = None) -> Prepared:
    """Read and check everything ``request`` needs, computing nothing: the representation (or
    ``rep``, already built), the images (``images`` maps sources already decoded), the feature
    file, the decoder, the layer, the input size and the device.  Raises clear errors
    (``ImageError``, ``RepresentationError``, ``DecoderError``, ``FeatureFileError``, ``RequestError``,
    ``DeviceError``, ``ParamError``) for anything wrong."""
    from . import features_io
    from . import representations as R
    from .device import resolve_device
    from .images import frame, input_region, load_image
    from .metrics import eval_set_distance

    request.validate()
    device = resolve_device(request.device)
    if rep is None:
        rep = R.get(request.model or R.DEFAULT, weights=request.weights, random_weights=request.random_weights,
                    params=request.rep_params_dict(), trust_torchscript=request.trust_torchscript)
    given = images or {}
    # With target features, the default image only serves the metrics when it was asked for.
    use_images = not (request.target_features and request.images == (DEFAULT_IMAGE,))
    arrays = [given[s] if s in given else load_image(s) for s in request.images] if use_images else []
    prep = Prepared(request, rep, "", device, [frame(a, request.framing) for a in arrays])
    prep.regions = [input_region(a.shape, request.framing) for a in arrays]

    if request.method == "hybrid" and not rep.differentiable:
        raise R.RepresentationError(f"{rep.name}: {rep.decoder_hint}; the hybrid method optimises after the "
                                    "decoder, so it needs a differentiable representation: use --method decoder")
    if request.method in ("decoder", "probe", "hybrid"):
        from .methods import decoder as D

        layer = request.layer
        if request.decoder:
            prep.decoder_file = str(D.decoder_file(request.decoder))
        else:
            prep.decoder_file, layer, note = _shipped_decoder(rep, request.layer)
            if note:
                prep.notes.append(note)
        prep.decoder, prep.layer = D.prepare(rep, D.load_checkpoint(prep.decoder_file), layer, "cpu")
        meta = prep.decoder.meta
        size = request.size                           # 0: the decoder's own (or the feature file's, below)
        prep.size = int(meta["input_size"]) if meta["architecture"] == "fc" or not size else size
    else:
        if not rep.differentiable:
            raise R.RepresentationError(f"{rep.name}: {rep.decoder_hint}: `invgui invert --model {rep.name} "
                                        "--method decoder --decoder FILE.pt` (train one with `invgui "
                                        "train-decoder`)")
        prep.size = request.optimize_params().size or rep.input_size

    if request.target_features:
        ff = features_io.load(request.target_features)
        if request.method == "optimize":
            prep.layer = rep.resolve_layer(request.layer or ff.meta.get("layer"))
            if not request.optimize_params().size and ff.meta.get("input_size"):
                prep.size = int(ff.meta["input_size"])
        elif not request.size and ff.meta.get("input_size") and prep.decoder.meta["architecture"] != "fc":
            prep.size = int(ff.meta["input_size"])
        info = rep.check_input(prep.layer, prep.size)
        features_io.check(ff, rep, prep.layer, info.shape or (), request.target_features)
        prep.target_features = ff.features
    elif request.method == "optimize":
        prep.layer = rep.resolve_layer(request.layer)
    rep.check_input(prep.layer, prep.size)
    # Every method's reconstruction is compared with the original at one side (the window's): a
    # decoder working at its training size (128 px) is upsampled to it, as paper 001 compares at
    # the input resolution, so the run list's PSNR/SSIM/NRE compare like with like.
    prep.eval_size = request.eval_size or prep.size
    if request.eval_set:
        prep.eval_distance = eval_set_distance(request.eval_set, prep.eval_size, on_skip=on_skip)
    return prep


def _shipped_decoder(rep, layer: str | None) -> tuple[str, str | None, str]:
    """The shipped decoder for ``layer`` (file, layer, note).  With no layer asked for and none
    shipped for the default one, the shipped decoder of the layer nearest in depth is taken, and
    the note says so (`invgui invert --method decoder` on the default model failed before)."""
    from .methods.decoder import DecoderError, find_shipped, shipped_layers

    chosen = rep.resolve_layer(layer)
    found = find_shipped(rep.name, chosen)
    if found is not None:
        return str(found), layer, ""
    others = shipped_layers(rep.name) if layer is None else []
    if others:
        depth = {name: rep.layer_info(name, rep.input_size).relative_depth for name in [chosen, *others]}
        nearest = min(others, key=lambda name: (abs(depth[name] - depth[chosen]), depth[name]))
        return (str(find_shipped(rep.name, nearest)), nearest,
                f"no decoder ships for {rep.name} {chosen} (the default layer): using the shipped one for "
                f"{nearest}, the nearest layer that has one (--layer and --decoder choose)")
    raise DecoderError(f"no decoder shipped for {rep.name} {chosen}; give one (--decoder FILE.pt) or train "
                       f"one: invgui train-decoder --model {rep.name} --layer {chosen} --data DIR --out FILE.pt")


def run_prepared(prep: Prepared, should_stop: Callable[[], bool] | None = None,
                 save_features: str | None = None, targets: list | None = None) -> Iterator[Event]:
    """The events of a prepared request (``Step``s, ``Status``es, a final ``Result`` — one per
    image for optimisation); every result's record says which device ran (``auto`` resolved) and
    what it is.  ``targets`` (optimisation): these instead of the request's own."""
    from .device import describe

    events = _optimize(prep, targets, should_stop) if targets is not None else \
        _run_prepared(prep, should_stop, save_features)
    for ev in events:
        if isinstance(ev, Result):
            ev.record["device"] = prep.device
            ev.record["device_name"] = describe(prep.device)
            if "input_region" in ev.record and prep.regions:     # the original's, not the framed square's
                ev.record["input_region"] = prep.regions[min(ev.record.get("batch_index", 0), len(prep.regions) - 1)]
        yield ev


def _run_prepared(prep: Prepared, should_stop: Callable[[], bool] | None = None,
                  save_features: str | None = None) -> Iterator[Event]:
    req = prep.request
    if req.method == "hybrid":
        yield from _hybrid(prep, should_stop)
        return
    if req.method == "optimize":
        from .methods.optimize import Target

        if prep.target_features is not None:
            targets = [Target(prep.images[0] if prep.images else None, prep.target_features, label=prep.source)]
        else:
            targets = [Target(img, label=src) for src, img in zip(req.images, prep.images)]
        yield from _optimize(prep, targets, should_stop)
        return
    if req.method == "decoder":
        from .methods import decoder as D

        image: Any = prep.images if len(prep.images) > 1 else (prep.images[0] if prep.images else None)
        for ev in D.run(prep.rep, image, prep.layer, prep.decoder, size=prep.size, device=prep.device,
                        target_features=prep.target_features, eval_distance=prep.eval_distance,
                        should_stop=should_stop, eval_size=prep.eval_size):
            if isinstance(ev, Result):
                ev.record["decoder"] = prep.decoder_file
            yield ev
        return
    from .methods import probe as P

    opt = req.params if req.probe.optimize else None
    yield from P.run_params(prep.rep, prep.images[0], prep.layer, prep.decoder, req.probe, size=prep.size,
                            optimize_params=opt, device=prep.device, should_stop=should_stop,
                            save_features=save_features)


def _hybrid(prep: Prepared, should_stop: Callable[[], bool] | None) -> Iterator[Event]:
    """Stage 1, the decoder (one forward pass for every image); stage 2, the optimisation from its
    reconstructions (restart 1 from each exactly, the others from it plus small noise), one batch.
    Each image's result is the optimisation's, its record keeps the decoder stage: its metrics,
    seconds and image (``Result.start``)."""
    from .methods import decoder as D
    from .methods.optimize import Target
    from .results import PER_IMAGE, per_image_metrics

    req = prep.request
    yield Status("stage 1 of 2: the decoder")
    first = None
    image: Any = prep.images if len(prep.images) > 1 else (prep.images[0] if prep.images else None)
    for ev in D.run(prep.rep, image, prep.layer, prep.decoder, size=prep.size, device=prep.device,
                    target_features=prep.target_features, eval_distance=prep.eval_distance,
                    eval_size=prep.eval_size):
        if isinstance(ev, Result):
            first = ev
    if should_stop is not None and should_stop():
        return
    starts = list(first.images)
    decoder_metrics = [{k: float(m[k]) for k in PER_IMAGE if k in m}
                       for m in per_image_metrics(first.metrics, len(starts))]
    if prep.target_features is not None:
        targets = [Target(prep.images[0] if prep.images else None, prep.target_features, label=prep.source,
                          start=starts[0])]
    else:
        targets = [Target(img, label=src, start=st) for src, img, st in zip(req.images, prep.images, starts)]
    yield Status("stage 2 of 2: optimisation from the decoder's reconstruction")
    for ev in _optimize(prep, targets, should_stop):
        if isinstance(ev, Result):
            i = ev.record.get("batch_index", 0) if len(targets) > 1 else 0
            ev.start = starts[i]
            ev.record.update({"method": "hybrid", "decoder": prep.decoder_file,
                              "decoder_meta": first.record.get("decoder_meta"),
                              "decoder_stage": {**decoder_metrics[i], "seconds": first.metrics["seconds"]}})
            ev.metrics["decoder_representation_error"] = decoder_metrics[i].get("representation_error")
        yield ev


def _optimize(prep: Prepared, targets: list, should_stop: Callable[[], bool] | None) -> Iterator[Event]:
    """Optimisation of ``targets`` at ``prep``'s layer, as few batches as fit ``MAX_BATCH_ROWS``
    (items × restarts); items are numbered across the batches (``Step.item``, the records'
    ``batch_index``) and a list longer than one batch says so once."""
    from .methods import optimize

    params = dataclasses.replace(prep.request.optimize_params(), size=prep.size)
    chunks = optimize.batches(len(targets), params.restarts)
    for n, chunk in enumerate(chunks):
        if len(chunks) > 1:
            yield Status(f"batch {n + 1} of {len(chunks)}: targets {chunk.start + 1}–{chunk.stop} of {len(targets)}")
        for ev in optimize.run_batch(prep.rep, targets[chunk.start:chunk.stop], prep.layer, params,
                                     device=prep.device, eval_distance=prep.eval_distance, should_stop=should_stop,
                                     eval_size=prep.eval_size):
            if chunk.start and isinstance(ev, Step):
                ev = dataclasses.replace(ev, item=ev.item + chunk.start)
            elif isinstance(ev, Result) and len(targets) > 1:
                ev.record["batch"] = len(targets)
                ev.record["batch_index"] = ev.record.get("batch_index", 0) + chunk.start
                ev.record["batch_rows"] = len(chunk) * params.restarts     # what ran together
            yield ev
        if should_stop is not None and should_stop():
            return                                # stopped: the later batches do not start


def batch_key(request: RunRequest) -> tuple | None:
    """Requests with equal keys can run as one batch (:func:`execute_batch`): optimisation of
    images at one layer of one representation with the same parameters but for the neuron
    subset (channels, window).  None: the request runs alone (decoders and probes are one
    forward pass already; a feature file is its own target)."""
    if request.method != "optimize" or request.target_features or request.eval_set:
        return None
    p = dataclasses.replace(request.optimize_params(), channels="", window="")
    return (rep_key(request), request.layer or "", json.dumps(to_dict(p), sort_keys=True, default=str))


def execute_batch(requests: list[RunRequest], should_stop: Callable[[], bool] | None = None, *,
                  images: dict[str, np.ndarray] | None = None, rep=None) -> Iterator[Event]:
    """The events of several requests with one :func:`batch_key` as one optimisation batch (the
    window's sweeps): one ``Result`` per request, in order; ``Step.item`` and the records'
    ``batch_index`` say which request.  One request is :func:`execute`."""
    if len(requests) == 1:
        yield from execute(requests[0], should_stop, images=images, rep=rep)
        return
    keys = {batch_key(r) for r in requests}
    if None in keys or len(keys) > 1:
        raise RequestError("these runs cannot share a batch: they differ in more than the image and the neuron "
                           "subset, or are not optimisations")
    if any(len(r.images) != 1 for r in requests):
        raise RequestError("a batch of runs takes one image per run")
    yield Status(f"loading {requests[0].model or 'the default representation'}")
    first = prepare(requests[0], images=images, rep=rep)
    preps = [first] + [prepare(r, images=images, rep=first.rep) for r in requests[1:]]
    first.regions = [p.regions[0] for p in preps]       # the records of batch item k: request k's image
    from .methods.optimize import Target

    targets = [Target(p.images[0], channels=p.request.optimize_params().channels,
                      window=p.request.optimize_params().window, label=p.request.image) for p in preps]
    yield from run_prepared(first, should_stop, targets=targets)


def execute(request: RunRequest, should_stop: Callable[[], bool] | None = None, *,
            images: dict[str, np.ndarray] | None = None, rep=None) -> Iterator[Event]:
    """THE entry point: the events of ``request``, from loading to the final ``Result``.
    ``images`` maps sources to arrays the caller has already decoded (the window's open image);
    ``rep`` is the representation the request names, already built (see ``rep_key``)."""
    yield Status(f"loading {request.model or 'the default representation'}")
    prep = prepare(request, images=images, rep=rep)
    yield from run_prepared(prep, should_stop)


def rep_key(request: RunRequest) -> tuple:
    """What identifies the representation a request runs on (and where): requests with the same
    key can share one built representation."""
    from .device import DeviceError, resolve_device

    try:
        device = resolve_device(request.device)        # "auto" on a machine without a GPU is "cpu"
    except DeviceError:
        device = request.device                        # prepare() will say what is wrong with it
    return (request.model or "", request.weights or "", bool(request.random_weights),
            json.dumps(request.rep_params_dict(), sort_keys=True, default=str), device)


def results(events: Iterator[Event]) -> list[Result]:
    """Drain ``events`` and return every ``Result`` (one per image of an optimisation batch)."""
    out = [ev for ev in events if isinstance(ev, Result)]
    if not out:
        raise RequestError("the run ended without a result")
    return out


def final_result(events: Iterator[Event]) -> Result:
    """Drain ``events`` and return the final ``Result``."""
    result = None
    for ev in events:
        if isinstance(ev, Result):
            result = ev
    if result is None:
        raise RequestError("the run ended without a result")
    return result
