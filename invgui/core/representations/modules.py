"""Models that live in Python: an ``nn.Module`` built in a notebook or script, inverted without
saving it first (``RunRequest(model=module)``, ``invgui.show(model=module)``).

A module is registered once under a name that says what it is — ``python:CLASS@HASH``, the
class's qualified name and the first 12 hex digits of the SHA-256 of its state dict — so runs,
records and sessions name it like any other model.  invgui works on its own copy (frozen, in eval
mode), so the caller's module is never changed.  A session restored in a process where that
module was not registered says so instead of running something else.
"""

from __future__ import annotations

import copy
import hashlib

import torch
from torch import nn

from .base import RepresentationError
from .cnn import CNNRepresentation, check_finite, middle_layer, read_patches

PREFIX = "python:"
_MODULES: dict[str, nn.Module] = {}


def state_hash(module: nn.Module) -> str:
    """SHA-256 of a module's state dict (names, dtypes, shapes and values), in hex."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def register_module(module: nn.Module) -> str:
    """The name runs use for ``module`` (registered on first use: a frozen copy is kept)."""
    if not isinstance(module, nn.Module):
        raise RepresentationError(f"a model is a registered name or a torch.nn.Module, not {type(module).__name__}")
    cls = type(module)
    if not any(True for _ in module.children()):
        raise RepresentationError(f"{cls.__qualname__} has no submodules, so no layer to invert: give a model built "
                                  "of modules (e.g. nn.Sequential(conv, relu, …))")
    check_finite(module, f"{cls.__qualname__} from Python")
    name = f"{PREFIX}{cls.__module__}.{cls.__qualname__}@{state_hash(module)[:12]}"
    if name not in _MODULES:
        _MODULES[name] = copy.deepcopy(module).eval().requires_grad_(False)
    return name


def from_module(name: str, random_weights: bool = False) -> CNNRepresentation:
    """The representation of a registered module (``register_module``'s name)."""
    module = _MODULES.get(name)
    if module is None:
        cls, _, digest = name[len(PREFIX):].rpartition("@")
        raise RepresentationError(
            f"this run's model lived in Python ({cls}, state dict {digest}) and is not in this process: pass "
            "the module again (RunRequest(model=module) or invgui.show(model=module))")
    if random_weights:
        raise RepresentationError(f"{name}: a model given from Python runs with its own weights")
    cfg = getattr(module, "pretrained_cfg", None) or {}          # a timm model says how it was trained
    size = int((cfg.get("input_size") or (3, 224, 224))[-1])
    cls, _, digest = name[len(PREFIX):].rpartition("@")
    rep = CNNRepresentation(name, f"{cls.rpartition('.')[2]} (Python, {digest[:8]})", module,
                            mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
                            std=tuple(cfg.get("std", (0.229, 0.224, 0.225))), input_size=size,
                            default_layer=middle_layer(module),
                            weights_info=f"Python module {cls} (state dict sha256 {digest})")
    return read_patches(rep, module)
