"""The registry of named representations.

``get(name)`` builds a fresh instance (weights loaded, frozen, eval mode); each caller
(GUI thread, worker thread, CLI) gets its own, so forward hooks never cross threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .base import LayerInfo, Representation, RepresentationError, WeightsNotFoundError
from .cnn import ALEXNET_ALIASES, CNNRepresentation, efficientnet_lite0, torchvision_cnn
from .hog import HOGRepresentation, hog_builder

__all__ = ["LayerInfo", "Representation", "RepresentationError", "WeightsNotFoundError",
           "CNNRepresentation", "HOGRepresentation", "REGISTRY", "get", "names", "DEFAULT"]


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    family: str          # "cnn", "hog" (later: "sift", "lbp")
    build: Callable[..., Representation]
    embedded: bool = False   # weights always available offline


REGISTRY: dict[str, Entry] = {}


def register(entry: Entry) -> None:
    REGISTRY[entry.name] = entry


register(Entry("efficientnet_lite0", "EfficientNet-Lite0 (ImageNet, embedded)", "cnn",
               efficientnet_lite0, embedded=True))
register(Entry("alexnet", "AlexNet (torchvision)", "cnn",
               torchvision_cnn("alexnet", "AlexNet (torchvision)", "features.6", ALEXNET_ALIASES)))
register(Entry("vgg16", "VGG-16 (torchvision)", "cnn",
               torchvision_cnn("vgg16", "VGG-16 (torchvision)", "features.16")))
register(Entry("resnet50", "ResNet-50 (torchvision)", "cnn",
               torchvision_cnn("resnet50", "ResNet-50 (torchvision)", "layer2")))

register(Entry("hog", "HOG (UoCTTI, differentiable)", "hog", hog_builder(bilinear=False), embedded=True))
register(Entry("hogb", "HOGb (UoCTTI, bilinear orientations)", "hog", hog_builder(bilinear=True), embedded=True))

DEFAULT = "efficientnet_lite0"


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str = DEFAULT, *, weights: str | None = None, random_weights: bool = False) -> Representation:
    """Build representation ``name``; ``weights`` is an explicit state-dict file.

    Raises :class:`WeightsNotFoundError` (saying which file was looked for and how to provide
    it) when pretrained weights are missing, unless ``random_weights`` is set.
    """
    try:
        entry = REGISTRY[name]
    except KeyError:
        raise RepresentationError(f"unknown representation {name!r}; choose one of {', '.join(REGISTRY)}") from None
    return entry.build(weights=weights, random_weights=random_weights)
