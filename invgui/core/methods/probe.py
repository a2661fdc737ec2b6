"""Run a feature-space probe: manipulate Φ0 (``manipulate``), reconstruct every variant with a
decoder (one batched forward pass) and, optionally, with the optimisation method too, so the two
methods can be compared on the same manipulated features.  A generator of events like the methods:
the final ``Result`` holds the reconstructions (decoder row first, then the optimisation row) and
``record["labels"]``; ``invgui.core.export.image_strip`` turns them into one image.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from .. import features_io
from ..events import Event, Result, Status
from ..images import ImageError, load_image, resize_center_crop
from ..params import check, to_dict
from ..representations import Representation, check_size
from . import decoder as D
from . import manipulate as M
from . import optimize
from .base import Prepared
from .probe_params import PROBE_PRESETS, ProbeParams  # noqa: F401

PROBE_PRESETS.add("random", ProbeParams(probe="random-histogram", stats_data="samples"))


def feature_stats(rep: Representation, layer: str, sources: list, size: int, device="cpu") -> M.FeatureStats:
    """Per-dimension feature statistics over images (paths or sample:NAME; unreadable ones skipped)."""
    feats = []
    for src in sources:
        try:
            img = load_image(src)
        except ImageError:
            continue
        x = torch.from_numpy(resize_center_crop(img, size)).permute(2, 0, 1)[None].to(device)
        with torch.no_grad():
            feats.append(rep.features(x, layer)[0].cpu())
    if len(feats) < 2:
        raise ImageError("feature statistics need at least two readable images")
    return M.FeatureStats.estimate(torch.stack(feats))


def stats_sources(params: ProbeParams) -> list | None:
    """The images of ``params.stats_data``: None (none given), the samples, or a folder's images."""
    from ..images import SAMPLE_SET

    if not params.stats_data.strip():
        return None
    if params.stats_data.strip() == "samples":
        return [f"sample:{n}" for n in SAMPLE_SET]
    return [str(f) for f in D.list_images(params.stats_data)]


def run(rep: Representation, image: np.ndarray, layer: str | None, decoder, kind: str, *,
        other: np.ndarray | None = None, stats_sources: list | None = None, size: int = 0,
        optimize_params: optimize.OptimizeParams | None = None, device: str | torch.device = "cpu",
        should_stop: Callable[[], bool] | None = None, save_features=None, **probe_kw) -> Iterator[Event]:
    """Probe ``kind`` (see ``manipulate.PROBES``) on ``image``; ``probe_kw`` go to ``probe_features``.

    ``save_features`` (a folder) also writes every variant as a feature file, listed in
    ``record["feature_files"]``, for ``invgui invert --target-features``.
    """
    device = torch.device(device)
    check_size(size)
    yield Status("loading the decoder")
    loaded, layer = D.prepare(rep, decoder, layer, device)
    size = int(loaded.meta["input_size"]) if loaded.meta["architecture"] == "fc" or not size else size
    rep.check_input(layer, size)
    t0 = time.perf_counter()

    def phi_of(img: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(resize_center_crop(img, size)).permute(2, 0, 1)[None].to(device)
        with torch.no_grad():
            return rep.features(x, layer)[0].cpu()

    phi = phi_of(image)
    stats = None
    if stats_sources is not None:
        yield Status(f"feature statistics over {len(stats_sources)} images")
        stats = feature_stats(rep, layer, stats_sources, size, device)
    layout = rep.layer_info(layer, size).layout
    variants = M.probe_features(kind, phi, other=phi_of(other) if other is not None else None, stats=stats,
                                layout=layout, **probe_kw)
    labels = [label for label, _ in variants]
    files = save_variant_features(rep, layer, size, variants, save_features) if save_features else []
    feats = torch.stack([f for _, f in variants]).to(device)
    images = D.reconstruct(loaded, rep, feats, size).permute(0, 2, 3, 1).cpu().numpy()
    rows = 1
    if optimize_params is not None:
        rows = 2
        optimize_params = dataclasses.replace(optimize_params, size=size)     # the probe's input size
        opt_images = []
        targets = [optimize.Target(image, f, label=label) for label, f in variants]
        for chunk in optimize.batches(len(targets), optimize_params.restarts):      # the variants as one batch
            yield Status(f"optimisation of variants {chunk.start + 1}–{chunk.stop} of {len(variants)} in one batch")
            for ev in optimize.run_batch(rep, targets[chunk.start:chunk.stop], layer, optimize_params,
                                         device=device, should_stop=should_stop):
                if isinstance(ev, Result):
                    opt_images.append(ev.images[0])
        images = np.concatenate([images, np.stack(opt_images)])
        labels = [f"decoder: {x}" for x in labels] + [f"optimisation: {x}" for x in labels]
    record = {"method": "probe", "probe": kind, "other_image": other is not None, **rep.describe(), "layer": layer,
              "input_size": size, "layout": layout.to_dict(),
              "labels": labels, "rows": rows, "probe_options": {k: v for k, v in probe_kw.items()},
              "decoder_meta": {k: loaded.meta.get(k) for k in ("architecture", "width", "input_size",
                                                                "held_out_normalised_error")},
              "optimize_params": None if optimize_params is None else to_dict(optimize_params),
              "feature_files": [str(f) for f in files]}
    yield Result(images=images, target=resize_center_crop(image, size), history={},
                 metrics={"seconds": time.perf_counter() - t0, "variants": len(variants)}, record=record)


def run_params(rep: Representation, image: np.ndarray, layer: str | None, decoder, params: ProbeParams, *,
               size: int = 0, optimize_params: optimize.OptimizeParams | None = None, device="cpu",
               should_stop=None, save_features=None) -> Iterator[Event]:
    """:func:`run` driven by a :class:`ProbeParams` (what the CLI and the window use)."""
    check(params, "probe parameters")
    params.kwargs()                      # a malformed position is a ParamError before anything loads
    other = load_image(params.other) if params.other.strip() else None
    if params.optimize and optimize_params is None:
        optimize_params = optimize.PRESETS.get("fast")
    yield from run(rep, image, layer, decoder, params.probe, other=other, stats_sources=stats_sources(params),
                   size=size, optimize_params=optimize_params if params.optimize else None, device=device,
                   should_stop=should_stop, save_features=save_features, **params.kwargs())


def run_request(prep: Prepared, should_stop: Callable[[], bool] | None = None, *,
                save_features: str | None = None) -> Iterator[Event]:
    """The registry's entry: the request's probe on its one image, decoded (and optimised when
    the probe parameters ask for it, with the request's optimisation parameters)."""
    req = prep.request
    opt = req.params if req.probe.optimize else None
    yield from run_params(prep.rep, prep.images[0], prep.layer, prep.decoder, req.probe, size=prep.size,
                          optimize_params=opt, device=prep.device, should_stop=should_stop,
                          save_features=save_features)


def save_variant_features(rep: Representation, layer: str, size: int, variants: list[tuple[str, torch.Tensor]],
                          folder, **extra) -> list:
    """Write each manipulated feature tensor as a feature file (``invgui invert --target-features``)."""
    import re
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (label, f) in enumerate(variants):
        meta = {**rep.describe(), "layer": layer, "input_size": size, "shape": list(f.shape), "probe": label,
                "layout": rep.layer_info(layer, size).layout.to_dict()}
        name = f"{i:02d}-{re.sub(r'[^A-Za-z0-9]+', '-', label).strip('-')}.pt"
        out.append(features_io.save(features_io.FeatureFile(f.cpu(), meta), folder / name, **extra))
    return out
