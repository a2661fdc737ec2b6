"""Feature files: Φ0 with its metadata, so inversion from features alone is reproducible.

``.pt`` files hold ``{"features": tensor C×H×W, "meta": {...}}`` (loaded with
``weights_only=True``); ``.npy`` files hold the bare array (no metadata: the representation
and layer must then be given).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import InvguiError
from .export import library_versions
from .files import atomic_write
from .images import image_batch
from .representations import Representation
from .safeload import check_archive, npy_header


class FeatureFileError(InvguiError):
    pass


@dataclass
class FeatureFile:
    features: torch.Tensor                    # the layer's output for one image (meta['layout'] says how)
    meta: dict[str, Any] = field(default_factory=dict)


def compute(rep: Representation, image: np.ndarray, layer: str | None, size: int = 0,
            device: str = "cpu") -> FeatureFile:
    layer = rep.resolve_layer(layer)
    rep.check_input(layer, size)
    size = size or rep.input_size
    x = image_batch(image, size).to(device)
    with torch.no_grad():
        phi = rep.to(device).features(x, layer)[0].cpu()
    meta = {**rep.describe(), "layer": layer, "input_size": size, "shape": list(phi.shape),
            "layout": rep.layer_info(layer, size).layout.to_dict(), "versions": library_versions()}
    return FeatureFile(phi, meta)


SUFFIXES = (".pt", ".npy")


def check_name(path: str | os.PathLike) -> Path:
    """A feature file's name ends in .pt (features with their metadata) or .npy (the array alone)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise FeatureFileError(f"{path}: a feature file's name ends in .pt (with its metadata) or .npy (the array "
                               f"alone), not {path.suffix or 'nothing'!r}")
    return path


def save(ff: FeatureFile, path: str | os.PathLike, **extra: Any) -> Path:
    path = check_name(path)
    meta = {**ff.meta, **extra}
    if path.suffix == ".npy":
        return atomic_write(path, lambda tmp: np.save(tmp, ff.features.numpy()))   # tmp ends in .npy
    return atomic_write(path, lambda tmp: torch.save({"features": ff.features, "meta": meta}, tmp))


MAX_VALUES = 1 << 26            # C·H·W of one feature tensor (256 MiB of float32)
_META_TYPES: dict[str, tuple[type, ...]] = {"representation": (str,), "layer": (str,), "input_size": (int,),
                                            "representation_params": (dict,), "shape": (list, tuple),
                                            "image": (str,), "probe": (str,), "framing": (str,), "layout": (dict,)}


def load(path: str | os.PathLike) -> FeatureFile:
    """Read a feature file safely: ``.npy`` with ``allow_pickle=False`` (its header — shape and
    type — checked before its data is read), ``.pt`` with ``weights_only=True`` after its declared
    size was checked; the features must be a finite float tensor of 1–3 dimensions and the
    metadata of the documented types.  Anything else is a :class:`FeatureFileError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FeatureFileError(f"{path}: no such feature file")
    try:
        if path.suffix == ".npy":
            with open(path, "rb") as f:
                shape, _, dtype = npy_header(f)
            _check_shape(tuple(shape), path)
            if dtype.kind not in "fiu":
                raise FeatureFileError(f"{path}: features of type {dtype}; expected numbers")
            arr = np.load(path, allow_pickle=False)
            return FeatureFile(_check_values(torch.from_numpy(np.asarray(arr, dtype=np.float32)), path), {})
        check_archive(path)
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FeatureFileError:
        raise
    except Exception as e:
        first = str(e).splitlines()[0][:160] if str(e) else ""
        raise FeatureFileError(f"{path}: not a feature file ({type(e).__name__}: {first})") from None
    if isinstance(obj, torch.Tensor):
        _check_dense(obj, path)
        _check_shape(tuple(obj.shape), path)
        return FeatureFile(_check_values(obj.float(), path), {})
    if not isinstance(obj, dict) or not isinstance(obj.get("features"), torch.Tensor):
        raise FeatureFileError(f"{path}: expected a tensor or {{'features': tensor, 'meta': {{...}}}}")
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise FeatureFileError(f"{path}: meta should be a dict, not {type(meta).__name__}")
    for key, types in _META_TYPES.items():
        v = meta.get(key)
        if v is not None and (not isinstance(v, types) or isinstance(v, bool)):
            raise FeatureFileError(f"{path}: meta[{key!r}] should be {types[0].__name__}, not {type(v).__name__}")
    size = meta.get("input_size")
    if size is not None and not 16 <= size <= 4096:
        raise FeatureFileError(f"{path}: meta['input_size'] = {size} is outside 16…4096 pixels")
    feats = _check_dense(obj["features"], path)
    _check_shape(tuple(feats.shape), path)
    if not (feats.is_floating_point() or feats.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32,
                                                          torch.int64)):
        raise FeatureFileError(f"{path}: features of type {feats.dtype}; expected numbers")
    return FeatureFile(_check_values(feats.float(), path), dict(meta))


def _check_dense(t: torch.Tensor, path) -> torch.Tensor:
    if t.layout != torch.strided:
        raise FeatureFileError(f"{path}: the features are a {str(t.layout).replace('torch.', '')} tensor; save them "
                               "dense (tensor.to_dense())")
    return t


def _check_shape(shape: tuple[int, ...], path) -> None:
    if not 1 <= len(shape) <= 3 or 0 in shape:
        raise FeatureFileError(f"{path}: features of shape {shape}; expected C, C×H×W (or H×W) without a batch")
    if math.prod(shape) > MAX_VALUES:
        raise FeatureFileError(f"{path}: features of shape {shape} hold more than {MAX_VALUES} values")


def _check_values(t: torch.Tensor, path) -> torch.Tensor:
    if not torch.isfinite(t).all():
        raise FeatureFileError(f"{path}: the features hold NaN or infinite values")
    return t


def check(ff: FeatureFile, rep: Representation, layer: str, expected_shape: tuple[int, ...], source: str) -> None:
    """Refuse features made by another representation/layer, or of the wrong shape."""
    m = ff.meta
    if m.get("representation") and m["representation"] != rep.name:
        raise FeatureFileError(f"{source}: features of {m['representation']}, not {rep.name}")
    if m.get("layer") and m["layer"] != layer:
        raise FeatureFileError(f"{source}: features of layer {m['layer']}, not {layer}")
    mine = rep.describe().get("representation_params")
    theirs = m.get("representation_params")
    if theirs and mine and theirs != mine:
        diff = ", ".join(f"{k} {theirs.get(k)!r} (here {mine.get(k)!r})" for k in sorted(set(theirs) | set(mine))
                         if theirs.get(k) != mine.get(k))
        raise FeatureFileError(f"{source}: features made with other {rep.name} parameters: {diff}; "
                               f"pass them with --rep-param")
    if tuple(ff.features.shape) != tuple(expected_shape):
        raise FeatureFileError(f"{source}: features have shape {tuple(ff.features.shape)}, but {rep.name} {layer} "
                               f"gives {tuple(expected_shape)} at this input size")
