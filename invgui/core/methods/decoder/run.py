"""Reconstructing with a trained decoder: one forward pass per image."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from ... import metrics
from ...errors import InvguiError
from ...events import Event, Result, Status
from ...images import input_region, resize_center_crop
from ...representations import Representation
from ..base import Prepared, fit_size
from .checkpoint import (
    DecoderError,
    Loaded,
    _load_encoder,
    check_match,
    decoder_file,
    find_shipped,
    load_checkpoint,
    shipped_layers,
)


def reconstruct(loaded: Loaded, rep: Representation, phi: torch.Tensor, size: int) -> torch.Tensor:
    """One forward pass: features N×… → images N×3×size×size in [0, 1]."""
    with torch.no_grad():
        return loaded.net(phi, (size, size)).clamp(0, 1)


def prepare(rep: Representation, decoder: str | os.PathLike | Loaded, layer: str | None,
            device) -> tuple[Loaded, str]:
    """Load (or take) a decoder, check it fits ``rep``/``layer`` (default: the decoder's layer), move it."""
    loaded = decoder if isinstance(decoder, Loaded) else load_checkpoint(decoder)
    source = str(decoder) if not isinstance(decoder, Loaded) else loaded.meta.get("file", "the decoder")
    if loaded.meta.get("representation") != rep.name:        # say that first, before any layer error
        check_match(loaded.meta, rep, str(layer or loaded.meta.get("layer")), source)
    layer = rep.resolve_layer(layer or loaded.meta.get("layer"))
    check_match(loaded.meta, rep, layer, source)
    if loaded.encoder is not None:                      # autoencoder: the fine-tuned encoder
        _load_encoder(rep, loaded.encoder, source)
    loaded.net.to(device)
    rep.to(device)
    return loaded, layer


def run(rep: Representation, image: np.ndarray | list[np.ndarray] | None, layer: str | None,
        decoder: str | os.PathLike | Loaded, *, size: int = 0, device: str | torch.device = "cpu",
        target_features: torch.Tensor | None = None, eval_distance: float | None = None,
        should_stop: Callable[[], bool] | None = None, eval_size: int = 0) -> Iterator[Event]:
    """Reconstruct ``image`` — or a list of images, as one batch — (or ``target_features``, C×… or
    N×C×…) with a trained decoder: one forward pass.

    ``size`` (default: the decoder's training crop size) is the side of the input the features
    are computed at and of the output.  Yields a ``Status`` and a ``Result`` like the
    optimisation method (no iterations; metrics: representation error of the reconstruction,
    PSNR/SSIM and, with ``eval_distance``, the normalised reconstruction error — means over the
    batch, with ``*_per_image`` lists — and the seconds of the forward pass).  ``eval_size``: the
    side those image metrics are computed at (default ``size``): reconstruction and original are
    both brought to it (:func:`~invgui.core.metrics.at_eval_size`), so decoders of another
    working size compare with optimisation at the window's size.
    """
    if image is None and target_features is None:
        raise InvguiError("give an image or target features")
    device = torch.device(device)
    yield Status("loading the decoder")
    loaded, layer = prepare(rep, decoder, layer, device)
    meta = loaded.meta
    # Fully convolutional decoders work at any size; the fully connected one only at its own.
    size = int(meta["input_size"]) if meta["architecture"] == "fc" or not size else size
    rep.check_input(layer, size)
    images_in = [image] if isinstance(image, np.ndarray) else list(image or [])
    targets = [resize_center_crop(im, size) for im in images_in]
    t0 = time.perf_counter()
    with torch.no_grad():
        if target_features is not None:
            phi0 = target_features.to(device=device, dtype=torch.float32)
            if phi0.dim() == len(meta["feature_shape"]):
                phi0 = phi0[None]
        else:
            phi0 = rep.features(torch.from_numpy(np.stack(targets)).permute(0, 3, 1, 2).to(device), layer)
        x = reconstruct(loaded, rep, phi0, size)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        images = x.permute(0, 2, 3, 1).cpu().numpy()
        rep_errs = metrics.representation_error(rep.features(x, layer), phi0).cpu().numpy()
    m: dict[str, Any] = {"representation_error": float(rep_errs.mean()), "seconds": seconds, "iterations": 0,
                         "iterations_per_second": 0.0, "start_representation_error": float("nan"),
                         "images": len(images), "images_per_second": len(images) / max(seconds, 1e-9)}
    if len(images) > 1:
        m["representation_error_per_image"] = rep_errs.tolist()
    eval_size = eval_size or size
    pairs = metrics.at_eval_size(images, images_in, eval_size) if len(targets) == len(images) else []
    for key, fn in (("psnr", metrics.psnr), ("ssim", metrics.ssim)) if pairs else ():
        vals = [fn(a, b) for a, b in pairs]
        m[key] = float(np.mean(vals))
        if len(vals) > 1:
            m[f"{key}_per_image"] = vals
    if pairs and eval_distance:
        vals = [metrics.normalised_reconstruction_error(a, b, eval_distance) for a, b in pairs]
        m["normalised_reconstruction_error"] = float(np.mean(vals))
        if len(vals) > 1:
            m["normalised_reconstruction_error_per_image"] = vals
        m["eval_distance"] = eval_distance
    record = {"method": "decoder", **rep.describe(), "weights_file": rep.weights_file, "layer": layer,
              "layer_shape": list(phi0.shape[1:]), "layer_layout": loaded.net.layout.to_dict(), "input_size": size,
              "device": str(device),
              "target": "features" if target_features is not None else "image",
              "decoder": str(decoder) if not isinstance(decoder, Loaded) else meta.get("file", "(in memory)"),
              "decoder_meta": {k: meta.get(k) for k in ("architecture", "width", "input_size", "epochs",
                                                         "held_out_mse", "held_out_normalised_error",
                                                         "autoencoder", "training")},
              "params": {"size": size}, "eval_size": eval_size,
              **({"input_region": input_region(images_in[0].shape)} if images_in else {}),
              "relative_depth": round(rep.layer_info(layer, size).relative_depth, 4)}
    yield Result(images=images, target=targets[0] if targets else None, history={}, metrics=m, record=record)


def run_request(prep: Prepared, should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
    """The registry's entry: one forward pass for every image of the prepared request (or for its
    feature file); the record names the decoder file."""
    image: Any = prep.images if len(prep.images) > 1 else (prep.images[0] if prep.images else None)
    for ev in run(prep.rep, image, prep.layer, prep.decoder, size=prep.size, device=prep.device,
                  target_features=prep.target_features, eval_distance=prep.eval_distance,
                  should_stop=should_stop, eval_size=prep.eval_size):
        if isinstance(ev, Result):
            ev.record["decoder"] = prep.decoder_file
        yield ev


def prepare_request(prep: Prepared, features=None) -> None:
    """The registry's preparation: the decoder asked for (or the one shipped for the layer), loaded
    and checked against the representation and layer; the side the request asks for (0: the
    decoder's own; a fully connected decoder only takes its own), or the feature file's."""
    request, rep = prep.request, prep.rep
    layer = request.layer
    if request.decoder:
        prep.decoder_file = str(decoder_file(request.decoder))
    else:
        prep.decoder_file, layer, note = shipped_decoder(rep, request.layer)
        if note:
            prep.notes.append(note)
    prep.decoder, prep.layer = prepare(rep, load_checkpoint(prep.decoder_file), layer, "cpu")
    meta = prep.decoder.meta
    fc = meta["architecture"] == "fc"
    prep.size = fit_size(prep, int(meta["input_size"]) if fc or not request.size else request.size)
    if features is not None and not request.size and features.meta.get("input_size") and not fc:
        prep.size = int(features.meta["input_size"])


def shipped_decoder(rep: Representation, layer: str | None) -> tuple[str, str | None, str]:
    """The shipped decoder for ``layer`` (file, layer, note).  With no layer asked for and none
    shipped for the default one, the shipped decoder of the layer nearest in depth is taken, and
    the note says so (`invgui invert --method decoder` on the default model failed before)."""
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
