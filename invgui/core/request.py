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

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .events import Event, Result, Status
from .methods.base import (
    DEFAULT_IMAGE,
    MAX_BATCH_ROWS,
    METHODS,
    Prepared,
    RequestError,
    RunRequest,
    freeze_params,
    rep_key,
)

# The request and what a method needs are defined below the methods (methods/base.py); here the
# one entry point that reads, dispatches through the registry and runs them.
__all__ = ["RunRequest", "RequestError", "Prepared", "DEFAULT_IMAGE", "METHODS", "freeze_params", "prepare",
           "run_prepared", "execute", "execute_batch", "batch_key", "take_batch", "rep_key", "Reuse", "results",
           "final_result"]


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
    spec = request.spec
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

    features = features_io.load(request.target_features) if request.target_features else None
    spec.prepare(prep, features)                  # the method's own: its layer, side, decoder
    if features is not None:
        info = rep.check_input(prep.layer, prep.size)
        features_io.check(features, rep, prep.layer, info.shape or (), str(request.target_features))
        prep.target_features = features.features
    rep.check_input(prep.layer, prep.size)
    # Every method's reconstruction is compared with the original at one side (the window's): a
    # decoder working at its training size (128 px) is upsampled to it, as paper 001 compares at
    # the input resolution, so the run list's PSNR/SSIM/NRE compare like with like.
    prep.eval_size = request.eval_size or prep.size
    if request.eval_set:
        prep.eval_distance = eval_set_distance(request.eval_set, prep.eval_size, on_skip=on_skip)
    return prep


def run_prepared(prep: Prepared, should_stop: Callable[[], bool] | None = None,
                 save_features: str | None = None, batch: list[Prepared] | None = None) -> Iterator[Event]:
    """The events of a prepared request (``Step``s, ``Status``es, a final ``Result`` — one per
    image for optimisation), from its method (the registry's entry); every result's record says
    which device ran (``auto`` resolved) and what part of its image was used.  ``batch`` (a
    batchable method): these prepared requests, ``prep`` first, as one batch."""
    from .device import describe
    from .results import assess

    options = {k: v for k, v in (("save_features", save_features), ("batch", batch)) if v is not None}
    for ev in prep.request.spec.run(prep, should_stop, **options):
        if isinstance(ev, Result):
            ev.record["warnings"] = assess(ev)          # a run that failed quietly says so, everywhere
            ev.record["device"] = prep.device
            if prep.notes:
                ev.record["notes"] = list(prep.notes)
            ev.record["device_name"] = describe(prep.device)
            if "input_region" in ev.record and prep.regions:     # the original's, not the framed square's
                ev.record["input_region"] = prep.regions[min(ev.record.get("batch_index", 0), len(prep.regions) - 1)]
        yield ev


def batch_key(request: RunRequest) -> tuple | None:
    """Requests with equal keys run as one batch (:func:`execute_batch`): the method's
    :meth:`~invgui.core.methods.base.Method.batch_key`."""
    return request.spec.batch_key(request)


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
    yield from (Status(note) for note in first.notes)
    yield from run_prepared(first, should_stop, batch=preps)


def execute(request: RunRequest, should_stop: Callable[[], bool] | None = None, *,
            images: dict[str, np.ndarray] | None = None, rep=None) -> Iterator[Event]:
    """THE entry point: the events of ``request``, from loading to the final ``Result``.
    ``images`` maps sources to arrays the caller has already decoded (the window's open image);
    ``rep`` is the representation the request names, already built (see ``rep_key``)."""
    yield Status(f"loading {request.model or 'the default representation'}")
    prep = prepare(request, images=images, rep=rep)
    yield from (Status(note) for note in prep.notes)     # what prepare chose for the user (also in the record)
    yield from run_prepared(prep, should_stop)


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


def take_batch(first: RunRequest, others: list[RunRequest], limit: int | None = None) -> list[int]:
    """Which of ``others`` (in order) run in one batch with ``first``: those with its
    :func:`batch_key`, while the rows (requests × restarts) fit in ``limit`` (default the
    optimisation's ``MAX_BATCH_ROWS``).  The window batches a sweep's queued runs this way."""
    key = batch_key(first)
    if key is None:
        return []
    limit = limit or MAX_BATCH_ROWS
    restarts = first.optimize_params().restarts
    rows, out = restarts, []
    for i, other in enumerate(others):
        if rows + restarts > limit:
            break
        if batch_key(other) == key:
            out.append(i)
            rows += restarts
    return out


class Reuse:
    """What a queue of requests reuses from one to the next: the representations built (by
    :func:`rep_key`; building EfficientNet-Lite0 takes ~0.5 s and holds the interpreter) and the
    images decoded (by source; a photo takes up to ~0.3 s), the last few of each.  ``for_requests``
    gives what :func:`execute_batch` takes."""

    MAX_REPS = 4
    MAX_IMAGES = 16

    def __init__(self) -> None:
        self.reps: dict[tuple, Any] = {}
        self.images: dict[str, np.ndarray] = {}

    @staticmethod
    def _keep(cache: dict, key, value, limit: int):
        cache[key] = value
        while len(cache) > limit:
            cache.pop(next(iter(cache)))
        return value

    def offer(self, request: RunRequest, rep) -> None:
        """A representation built elsewhere (the window's own) for requests that name the same one."""
        self._keep(self.reps, rep_key(request), rep, self.MAX_REPS)

    def rep(self, request: RunRequest):
        """The representation ``request`` runs on, built once (a TorchScript file is left to
        :func:`prepare`, which checks the user trusts it)."""
        from . import representations as R

        key = rep_key(request)
        rep = self.reps.get(key)
        if rep is None and not request.model.startswith("torchscript:"):
            rep = self._keep(self.reps, key, R.get(request.model or R.DEFAULT, weights=request.weights,
                                                   random_weights=request.random_weights,
                                                   params=request.rep_params_dict()), self.MAX_REPS)
        return rep

    def image(self, source: str) -> np.ndarray:
        from .images import load_image

        if source not in self.images:
            self._keep(self.images, source, load_image(source), self.MAX_IMAGES)
        return self.images[source]

    def for_requests(self, requests: list[RunRequest], given: dict[str, np.ndarray] | None = None
                     ) -> dict[str, Any]:
        """``images`` and ``rep`` for :func:`execute_batch` of ``requests``: the images ``given``
        (already decoded by the caller) and the others decoded once here; the representation."""
        images = dict(given or {})
        for source in (s for r in requests for s in r.images):
            if source not in images:
                images[source] = self.image(source)
        return {"images": images, "rep": self.rep(requests[0])}
