"""Feature files: Φ0 with its metadata, so inversion from features alone is reproducible.

``.pt`` files hold ``{"features": tensor C×H×W, "meta": {...}}`` (loaded with
``weights_only=True``); ``.npy`` files hold the bare array (no metadata: the representation
and layer must then be given).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .export import library_versions
from .images import atomic_write, image_batch
from .representations import Representation


class FeatureFileError(ValueError):
    pass


@dataclass
class FeatureFile:
    features: torch.Tensor                    # C×H×W or C (no batch dimension)
    meta: dict[str, Any] = field(default_factory=dict)


def compute(rep: Representation, image: np.ndarray, layer: str | None, size: int = 0,
            device: str = "cpu") -> FeatureFile:
    layer = rep.resolve_layer(layer)
    size = size or rep.input_size
    x = image_batch(image, size).to(device)
    with torch.no_grad():
        phi = rep.to(device).features(x, layer)[0].cpu()
    meta = {**rep.describe(), "layer": layer, "input_size": size, "shape": list(phi.shape),
            "versions": library_versions()}
    return FeatureFile(phi, meta)


def save(ff: FeatureFile, path: str | os.PathLike, **extra: Any) -> Path:
    path = Path(path)
    meta = {**ff.meta, **extra}
    if path.suffix == ".npy":
        return atomic_write(path, lambda tmp: np.save(tmp, ff.features.numpy()))   # tmp ends in .npy
    return atomic_write(path, lambda tmp: torch.save({"features": ff.features, "meta": meta}, tmp))


def load(path: str | os.PathLike) -> FeatureFile:
    path = Path(path)
    if not path.is_file():
        raise FeatureFileError(f"{path}: no such feature file")
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
            return FeatureFile(torch.from_numpy(np.asarray(arr, dtype=np.float32)), {})
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise FeatureFileError(f"{path}: not a feature file ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    if isinstance(obj, torch.Tensor):
        return FeatureFile(obj.float(), {})
    if not isinstance(obj, dict) or not isinstance(obj.get("features"), torch.Tensor):
        raise FeatureFileError(f"{path}: expected a tensor or {{'features': tensor, 'meta': {{...}}}}")
    return FeatureFile(obj["features"].float(), dict(obj.get("meta") or {}))


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
