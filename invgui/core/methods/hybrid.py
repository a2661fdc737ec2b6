"""The hybrid method: paper 001's decoder, then paper 000's optimisation from its reconstruction.

Stage 1, the decoder (one forward pass for every image); stage 2, the optimisation from its
reconstructions (restart 1 from each exactly, the others from it plus small noise), one batch.
Each image's result is the optimisation's; its record keeps the decoder stage: its metrics,
seconds and image (``Result.start``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..events import PER_IMAGE, Event, Result, Status, per_image_metrics
from . import optimize
from .base import Prepared
from .decoder.run import prepare_request as prepare_decoder
from .decoder.run import run_request as decode


def prepare_request(prep: Prepared, features=None) -> None:
    """The registry's preparation: the decoder's (:func:`.decoder.run.prepare_request`), on a
    representation gradients flow through (the second stage optimises)."""
    rep = prep.rep
    if not rep.differentiable:
        from ..representations import RepresentationError

        raise RepresentationError(f"{rep.name}: {rep.decoder_hint}; the hybrid method optimises after the "
                                  "decoder, so it needs a differentiable representation: use --method decoder")
    prepare_decoder(prep, features)


def run_request(prep: Prepared, should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
    """The registry's entry (see the module's text)."""
    yield Status("stage 1 of 2: the decoder")
    first = None
    for ev in decode(prep):
        if isinstance(ev, Result):
            first = ev
    if first is None or (should_stop is not None and should_stop()):
        return
    starts = list(first.images)
    decoder_metrics = [{k: float(m[k]) for k in PER_IMAGE if k in m}
                       for m in per_image_metrics(first.metrics, len(starts))]
    targets = optimize.request_targets(prep, starts)
    yield Status("stage 2 of 2: optimisation from the decoder's reconstruction")
    for ev in optimize.run_request(prep, should_stop, targets=targets):
        if isinstance(ev, Result):
            i = ev.record.get("batch_index", 0) if len(targets) > 1 else 0
            ev.start = starts[i]
            ev.record.update({"method": "hybrid", "decoder": prep.decoder_file,
                              "decoder_meta": first.record.get("decoder_meta"),
                              "decoder_stage": {**decoder_metrics[i], "seconds": first.metrics["seconds"]}})
            ev.metrics["decoder_representation_error"] = decoder_metrics[i].get("representation_error", float("nan"))
        yield ev
