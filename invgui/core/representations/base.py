"""What every representation Φ knows about itself."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


class RepresentationError(ValueError):
    """A representation, its weights or a layer cannot be used; the message says why and what to do."""


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
    children: list["LayerInfo"] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.shape is not None

    def shape_text(self) -> str:
        if self.shape is None:
            return "does not fit" if self.error else "not run"
        return "×".join(map(str, self.shape))


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

    def layers(self, size: int | None = None) -> list[LayerInfo]:
        """Flat list of layers in tree order, shapes computed at ``size``×``size``."""
        raise NotImplementedError

    def layer_tree(self, size: int | None = None) -> list[LayerInfo]:
        """Top-level nodes with ``children`` filled in."""
        raise NotImplementedError

    def resolve_layer(self, layer: str | None) -> str:
        raise NotImplementedError

    def layer_info(self, layer: str | None, size: int | None = None) -> LayerInfo:
        """The tree node of ``layer`` (or the default layer) at input ``size``."""
        name = self.resolve_layer(layer)
        return next(i for i in self.layers(size) if i.name == name)

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        """Map an RGB batch in [0, 1] to the model's input space."""
        mean = torch.tensor(self.mean, dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
        return (x01 - mean) / std

    def features(self, x01: torch.Tensor, layer: str) -> torch.Tensor:
        """Φ at ``layer`` of an RGB batch in [0, 1] (N×3×H×W); only runs up to that layer."""
        raise NotImplementedError

    def to(self, device: torch.device | str) -> "Representation":
        return self

    def set_channels_last(self, on: bool) -> None:
        """Use the channels-last memory layout where the representation has convolutions."""
