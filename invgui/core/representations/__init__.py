"""The registry of named representations.

``get(name)`` builds a fresh instance (weights loaded, frozen, eval mode); each caller
(GUI thread, worker thread, CLI) gets its own, so forward hooks never cross threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import CATALOG, DEFAULT, Listing
from .base import (
    MAX_INPUT_SIDE,
    MIN_INPUT_SIDE,
    LayerInfo,
    Representation,
    RepresentationError,
    WeightsNotFoundError,
    check_size,
)
from .cnn import (
    ALEXNET_ALIASES,
    CNNRepresentation,
    UntrustedModelError,
    any_timm,
    any_torchvision,
    efficientnet_lite,
    efficientnet_lite0,
    is_trusted,
    timm_folder,
    torchscript,
    torchvision_cache_file,
    torchvision_cnn,
    trust,
)
from .dinov2 import dinov2_vits14
from .dsift import DSIFTRepresentation, dsift_builder
from .hog import HOGRepresentation, hog_builder
from .lbp import LBPRepresentation, lbp_builder
from .sift import SIFTRepresentation, sift_builder

__all__ = ["LayerInfo", "Representation", "RepresentationError", "WeightsNotFoundError", "UntrustedModelError",
           "trust", "is_trusted", "check_size", "MIN_INPUT_SIDE", "MAX_INPUT_SIDE",
           "CNNRepresentation", "HOGRepresentation", "DSIFTRepresentation",
           "LBPRepresentation", "SIFTRepresentation", "REGISTRY", "get", "names", "DEFAULT"]


@dataclass(frozen=True)
class Entry(Listing):
    """A catalogued representation (catalog.Listing: name, title, family, …) and how it is built."""

    build: Callable[..., Representation] = field(kw_only=True)


# How each name of the catalogue is built; its listing (title, family, parameters) is catalog.py's.
_BUILDERS: dict[str, Callable[..., Representation]] = {
    "efficientnet_lite0": efficientnet_lite0,
    "efficientnet_lite1": efficientnet_lite(1),
    "efficientnet_lite2": efficientnet_lite(2),
    "dinov2_vits14": dinov2_vits14,
    "alexnet": torchvision_cnn("alexnet", CATALOG["alexnet"].title, "features.6", ALEXNET_ALIASES),
    "vgg16": torchvision_cnn("vgg16", CATALOG["vgg16"].title, "features.16"),
    "resnet50": torchvision_cnn("resnet50", CATALOG["resnet50"].title, "layer2"),
    "hog": hog_builder(bilinear=False),
    "hogb": hog_builder(bilinear=True),
    "dsift": dsift_builder,
    "lbp": lbp_builder,
    "sift": sift_builder,
}
if set(_BUILDERS) != set(CATALOG):
    raise ImportError(f"representations: built {sorted(_BUILDERS)} but catalogued {sorted(CATALOG)}")

REGISTRY: dict[str, Entry] = {}


def register(entry: Entry) -> None:
    REGISTRY[entry.name] = entry


for _listing in CATALOG.values():
    register(Entry(**vars(_listing), build=_BUILDERS[_listing.name]))


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str = DEFAULT, *, weights: str | None = None, random_weights: bool = False,
        params: Any = None, trust_torchscript: bool = False) -> Representation:
    """Build representation ``name``; ``weights`` is an explicit state-dict file.
    ``trust_torchscript``: the user said a ``torchscript:FILE`` may be loaded (it is a program).

    ``params`` are the representation's own parameters (hand-crafted ones): an instance of its
    ``Params`` dataclass or a dict of field values (e.g. ``{"cell": 4}``).

    Raises :class:`WeightsNotFoundError` (saying which file was looked for and how to provide
    it) when pretrained weights are missing, unless ``random_weights`` is set.
    """
    if name.startswith("torchscript:"):
        if trust_torchscript:
            trust(name[len("torchscript:"):])
        return torchscript(name[len("torchscript:"):], random_weights=random_weights)
    if name.startswith("python:"):
        from .modules import from_module

        return from_module(name, random_weights=random_weights)
    if name.startswith("torchvision:"):
        return any_torchvision(name[len("torchvision:"):], weights=weights, random_weights=random_weights)
    if name.startswith("timm:"):
        return any_timm(name[len("timm:"):], weights=weights, random_weights=random_weights)
    if name not in REGISTRY and Path(name).is_dir():              # a timm / Hugging Face checkpoint folder
        return any_timm(timm_folder(name), weights=name, random_weights=random_weights)
    try:
        entry = REGISTRY[name]
    except KeyError:
        raise RepresentationError(f"unknown representation {name!r}; choose one of {', '.join(REGISTRY)}, or "
                                  "torchscript:FILE, torchvision:ARCH or timm:ARCH (with --weights FILE), or a "
                                  "checkpoint folder") from None
    if params is None or params == {}:
        return entry.build(weights=weights, random_weights=random_weights)
    return entry.build(weights=weights, random_weights=random_weights, params=make_params(name, params))


def weights_status(name: str) -> str:
    """Whether pretrained weights are here: 'embedded', 'present: FILE' or 'missing: put URL in FILE'."""
    entry = REGISTRY[name]
    if entry.needs:
        import importlib.util

        module, how = entry.needs
        if importlib.util.find_spec(module) is None:
            return f"missing: {how}"
    if entry.embedded:
        return "embedded"
    if entry.family == "cnn":
        try:
            cached, url = torchvision_cache_file(name)
        except Exception:
            return "unknown"
        return f"present: {cached}" if cached.is_file() else f"missing: download {url} into {cached.parent}"
    return "none needed"


def make_params(name: str, values: Any) -> Any:
    """The representation's parameter instance from an instance or a dict; clear errors otherwise."""
    from ..params import from_dict, validate

    entry = REGISTRY.get(name)
    if entry is None or entry.presets is None:
        raise RepresentationError(f"{name} has no parameters of its own (got {values!r})")
    cls = entry.presets.cls
    if not isinstance(values, cls):
        try:
            values = from_dict(cls, dict(values))
        except (ValueError, TypeError) as e:
            known = ", ".join(f.name for f in __import__("dataclasses").fields(cls))
            raise RepresentationError(f"{name}: {e} (its parameters: {known})") from None
    problems = validate(values)
    if problems:
        raise RepresentationError(f"{name}: " + "; ".join(problems))
    return values


def parse_params(items: list[str] | None) -> dict[str, str]:
    """``["cell=4", "orientations=9"]`` (CLI ``--rep-param``) → a dict of strings."""
    out = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep:
                raise RepresentationError(f"--rep-param {item!r}: expected NAME=VALUE")
            out[key.strip().replace("-", "_")] = value.strip()
    return out


def feature_picture(rep: Representation, image, size: int = 0):
    """The representation's picture of Φ0 for an H×W×3 image in [0, 1] at ``size`` (uint8), or None."""
    from ..images import image_batch

    return rep.visualize(image_batch(image, size or rep.input_size))
