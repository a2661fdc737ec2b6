"""What every representation Φ knows about itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..catalog import MAX_INPUT_SIDE, MIN_INPUT_SIDE, RepresentationError, check_size  # noqa: F401
from ..layout import Layout, plain


class WeightsNotFoundError(RepresentationError):
    """Pretrained weights are not on this machine."""


@dataclass
class LayerInfo:
    """One node of a representation's layer tree."""

    name: str                                  # full module name users know, e.g. "blocks.3"
    kind: str                                  # module class, e.g. "Conv2d"
    shape: tuple[int, ...] | None              # output shape C×H×W (or C) for the current input size
    depth: int                                 # nesting level (0 = top)
    order: int                                 # position in execution order, -1 when not run
    aliases: tuple[str, ...] = ()              # e.g. ("conv3",) for AlexNet's features.6
    error: str = ""                            # why the shape is unknown (does not fit the input)
    stride: int | None = None                  # input pixels per output cell (spatial layers only)
    relative_depth: float = 0.0                # execution order scaled to [0, 1] (0 = first module)
    children: list[LayerInfo] = field(default_factory=list)
    layout_: Layout | None = None              # how the output is laid out (core.layout); None: read from shape
    per_image: bool = True                     # False: its first dimension is not the image (Swin's windows)

    @property
    def fits(self) -> bool:
        return self.shape is not None

    @property
    def layout(self) -> Layout:
        """C×H×W, H×W×C, tokens (prefix + patch grid), a vector, or unknown (``core.layout``)."""
        return self.layout_ if self.layout_ is not None else plain(self.shape or ())

    def shape_text(self) -> str:
        if self.shape is None:
            return "not per image" if not self.per_image else "does not fit" if self.error else "not run"
        return self.layout.text()


_CONSTANTS: dict[tuple, torch.Tensor] = {}


def const(values, like: torch.Tensor) -> torch.Tensor:
    """``values`` as a tensor on ``like``'s device and dtype, made once per device and dtype.

    Built anew in every forward pass, such a constant is a host-to-device copy per call: a
    CUDA graph cannot capture that ("Cannot copy between CPU and CUDA tensors during CUDA graph
    capture"), and eagerly it is one more transfer per step.
    """
    key = (tuple(values), like.dtype, like.device)
    t = _CONSTANTS.get(key)
    if t is None:
        t = _CONSTANTS[key] = torch.tensor(key[0], dtype=like.dtype, device=like.device)
    return t


class Representation:
    """Base class.  Subclasses set the attributes and implement :meth:`features`."""

    name: str = ""
    title: str = ""
    differentiable: bool = True
    input_size: int = 224                       # default square input side
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)   # per-channel, input in [0, 1]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    grayscale: bool = False
    default_layer: str = ""
    weights_info: str = ""                      # where the weights came from (for records)
    weights_file: str | None = None
    model: Any = None                           # the network (CNNs: an nn.Module); None: hand-crafted
    patch: int = 1                              # a patch model's patch side: inputs are a multiple of it
    fixed_size: int | None = None               # the one input side a model takes (None: any)
    Params: type | None = None                  # frozen dataclass of the representation's own parameters
    params: Any = None                          # an instance of Params (None for CNNs)
    decoder_hint = ("it is not differentiable, so the optimisation method (which needs ∂Φ/∂x) cannot "
                    "invert it; use the decoder method instead (trained up-convolutional networks, "
                    "Dosovitskiy & Brox)")

    def layers(self, size: int | None = None) -> list[LayerInfo]:
        """Flat list of layers in tree order, shapes computed at ``size``×``size``."""
        raise NotImplementedError

    def layer_tree(self, size: int | None = None) -> list[LayerInfo]:
        """Top-level nodes with ``children`` filled in."""
        raise NotImplementedError

    def layers_ready(self, size: int | None = None) -> bool:
        """Whether ``layers(size)`` returns at once (False: it needs a forward pass first)."""
        return True

    def resolve_layer(self, layer: str | None) -> str:
        raise NotImplementedError

    def layer_info(self, layer: str | None, size: int | None = None) -> LayerInfo:
        """The tree node of ``layer`` (or the default layer) at input ``size``."""
        name = self.resolve_layer(layer)
        return next(i for i in self.layers(size) if i.name == name)

    def check_input(self, layer: str | None, size: int | None = None) -> LayerInfo:
        """The layer's node at input ``size`` (0/None: the representation's own), or a clear
        :class:`RepresentationError` when the size is outside what invgui computes at
        (``MIN_INPUT_SIDE``…``MAX_INPUT_SIDE``) or the layer does not fit an input that small."""
        size = check_size(size) or self.input_size
        info = self.layer_info(layer, size)
        if not info.fits:
            raise RepresentationError(f"{self.name} {info.name} does not fit a {size}×{size} input"
                                      + (f": {info.error}" if info.error else "") + "; use a larger input size "
                                      "or an earlier layer")
        return info

    def fit_size(self, size: int) -> tuple[int, str]:
        """(the side to compute at for a requested ``size``, what was changed and why, or "")."""
        if self.fixed_size and size != self.fixed_size:
            return self.fixed_size, (f"{self.name} takes {self.fixed_size}×{self.fixed_size} inputs only: the run uses "
                                     f"{self.fixed_size} px instead of {size}")
        if self.patch > 1 and size % self.patch:
            fitted = max(self.patch, size // self.patch * self.patch)
            return fitted, (f"{self.name} cuts its input into {self.patch}-px patches: the run uses {fitted} px "
                            f"instead of {size}")
        return size, ""

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        """Map an RGB batch in [0, 1] to the model's input space."""
        return (x01 - const(self.mean, x01).view(1, 3, 1, 1)) / const(self.std, x01).view(1, 3, 1, 1)

    def features(self, x01: torch.Tensor, layer: str) -> torch.Tensor:
        """Φ at ``layer`` of an RGB batch in [0, 1] (N×3×H×W); only runs up to that layer."""
        raise NotImplementedError

    def to(self, device: torch.device | str) -> Representation:
        return self

    def receptive_field(self, layer: str, size: int | None = None) -> int | None:
        """Side, in pixels, of the input region that reaches the centre cell of ``layer``'s output:
        the support of that cell's input gradient on a random image (None when it has no spatial
        map, or the representation is not differentiable)."""
        return self.receptive_fields([layer], size)[layer]

    def receptive_fields(self, layers: list[str], size: int | None = None) -> dict[str, int | None]:
        """:meth:`receptive_field` of each of ``layers`` (the layer tree's rows in view); a layer
        that does not fit ``size`` gives None.  One pass each, stopped at the layer: measured on
        EfficientNet-Lite0 (2-core CPU), a batched pass (copy i of the image takes layer i's
        gradient) was 1.3× faster at 96 px and 1.9× slower at 224 px, so it is not batched."""
        out: dict[str, int | None] = {}
        for layer in layers:
            if not self.differentiable:
                out[layer] = None
                continue
            x = rf_probe(size or self.input_size)
            try:
                lay = self.layer_info(layer, size or self.input_size).layout
                if lay.grid is None:
                    out[layer] = None
                    continue
                with torch.enable_grad():
                    phi = lay.spatial(self.features(x, self.resolve_layer(layer)))
                    h, w = phi.shape[-2:]
                    phi[0, :, h // 2, w // 2].abs().sum().backward()
            except (RepresentationError, ValueError, RuntimeError):
                out[layer] = None
                continue
            out[layer] = gradient_extent(x.grad[0]) if x.grad is not None else None
        return out

    def describe(self) -> dict[str, Any]:
        """What a record needs to rebuild this representation: name, weights, own parameters."""
        from ..params import to_dict

        out: dict[str, Any] = {"representation": self.name, "weights": self.weights_info}
        if self.params is not None:
            out["representation_params"] = to_dict(self.params)
        return out

    def visualize(self, x01: torch.Tensor) -> np.ndarray | None:
        """A picture of the features of one RGB image in [0, 1] (1×3×H×W) as H'×W'×3 uint8, or None.

        Hand-crafted representations draw themselves as in paper 001, Fig. 1 (HOG glyphs, SIFT
        keypoints, LBP pattern map); CNN layers have no such picture (the GUI shows a channel).
        """
        return None

    def set_channels_last(self, on: bool) -> None:
        """Use the channels-last memory layout where the representation has convolutions."""


def luma255(x01: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of an RGB batch in [0, 1], on the 0–255 scale: N×1×H×W (as VLFeat's inputs)."""
    w = const((0.299, 0.587, 0.114), x01).view(1, 3, 1, 1)
    return (x01 * w).sum(1, keepdim=True) * 255.0


class HandCrafted(Representation):
    """A hand-crafted representation: no weights, one layer named after it, its own parameters."""

    weights_info = "none (hand-crafted)"
    weights_file = None
    mean = (0.5, 0.5, 0.5)
    std = (1.0, 1.0, 1.0)
    grayscale = True
    input_size = 224
    kind = ""

    def __init__(self, name: str, params: Any):
        self.name = name
        self.params = params
        self.default_layer = name

    def output_shape(self, size: int) -> tuple[int, int, int]:
        raise NotImplementedError

    def stride(self) -> int:
        raise NotImplementedError

    def layers(self, size: int | None = None) -> list[LayerInfo]:
        size = size or self.input_size
        try:
            shape, error = self.output_shape(size), ""
        except RepresentationError as e:
            shape, error = None, str(e)
        return [LayerInfo(name=self.name, kind=self.kind, shape=shape, depth=0, order=0, error=error,
                          stride=self.stride(), relative_depth=0.0)]

    def layer_tree(self, size: int | None = None) -> list[LayerInfo]:
        return self.layers(size)

    def resolve_layer(self, layer: str | None) -> str:
        if layer in (None, "", self.name):
            return self.name
        raise RepresentationError(f"{self.name} has a single layer, {self.name!r}, not {layer!r}")

    def check_size(self, h: int, w: int) -> None:
        """Raise a clear error when an input of h×w pixels is too small for one output cell."""
        info = self.layers(min(h, w))[0]
        if info.error:
            raise RepresentationError(info.error)


def handcrafted_builder(make: Callable[[Any], HandCrafted], label: str):
    """A registry builder for a hand-crafted representation: ``make(params)``; no weights file."""

    def build(weights: str | None = None, random_weights: bool = False, params: Any = None) -> HandCrafted:
        if weights:
            raise RepresentationError(f"{label} is hand-crafted and takes no weights file")
        return make(params)

    return build


def rf_probe(size: int) -> torch.Tensor:
    """The input receptive fields are measured on: one seeded random image, requiring grad."""
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, size, size, generator=g).requires_grad_(True)


def gradient_extent(grad: torch.Tensor) -> int | None:
    """Side of the bounding square of the pixels a 3×H×W input gradient reaches (None: none)."""
    reach = (grad.abs().sum(0) > 0).nonzero()
    if len(reach) == 0:
        return None
    ys, xs = reach[:, 0], reach[:, 1]
    return int(max(ys.max() - ys.min(), xs.max() - xs.min())) + 1
