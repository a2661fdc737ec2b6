"""The decoder method (Dosovitskiy & Brox, CVPR 2016): train an up-convolutional network f with
min Σ‖x_i − f(Φ(x_i))‖² on a folder of images, then reconstruct with one forward pass.

Works for every representation, differentiable or not (LBP, sparse SIFT): only the decoder gets
gradients.  ``train`` and ``run`` are generators of events like the optimisation method, so the
CLI, the GUI worker and tests consume them the same way.

Checkpoints are dicts of tensors and plain values, loaded with ``weights_only=True``:
``{"invgui_decoder": 1, "meta": {...}, "decoder": state_dict, "encoder": state_dict | None,
"optimizer": state_dict, "epoch": n}``.  ``meta`` says what the decoder inverts (representation,
layer, its parameters, input size, normalisation), how it was built (architecture, width) and
trained (data, sizes, epochs, held-out error, versions); loading refuses a checkpoint whose
representation, layer or parameters do not match, saying what differs.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .. import metrics
from ..events import Event, Result, Status, Step
from ..export import library_versions
from ..images import ImageError, atomic_write, load_image, resize_center_crop, to_uint8
from ..params import Presets, check, param, to_dict
from ..representations import REGISTRY, Representation, RepresentationError
from ..safeload import TooLargeError, check_archive
from . import decoder_nets as nets

FORMAT = 1
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
MAX_HELD_OUT = 256      # held-out images evaluated after each epoch
CACHE_SIDE = 4          # decoded training images are kept with their shorter side ≤ CACHE_SIDE × size


class DecoderError(ValueError):
    """A decoder checkpoint cannot be used here; the message says why."""


@dataclass(frozen=True)
class TrainParams:
    """Training of a decoder (paper 001 §3: Adam β 0.9/0.999, batch 64, lr 1e-3 decayed at the end)."""

    epochs: int = param(10, label="Epochs", min=1, max=100000, group="Training",
                        tooltip="Passes over the training images (each gives 'crops per image' random crops).")
    batch: int = param(64, label="Batch", min=1, max=4096, group="Training", tooltip="Mini-batch size (paper: 64).")
    lr: float = param(1e-3, label="Learning rate", min=1e-7, max=1.0, group="Training",
                      tooltip="Adam's initial learning rate (paper: 0.001).")
    decay_from: float = param(0.7, label="Decay from", min=0.0, max=1.0, step=0.05, group="Training",
                              tooltip="Fraction of training after which the rate decays geometrically, reaching "
                                      "'final LR factor' × lr at the end (paper: 'gradually decreased towards "
                                      "the end').")
    final_lr: float = param(0.1, label="Final LR factor", min=0.0, max=1.0, step=0.05, group="Training",
                            tooltip="The learning rate at the end, as a fraction of the initial one.")
    size: int = param(64, label="Crop size (px)", min=16, max=1024, step=16, group="Data",
                      tooltip="Side of the random training crops; also the default reconstruction size.")
    crops_per_image: int = param(16, label="Crops per image", min=1, max=10000, group="Data",
                                 tooltip="Random crops (random scale and position, random horizontal flip) "
                                         "drawn from each training image per epoch.")
    colour_jitter: float = param(0.0, label="Colour jitter", min=0.0, max=1.0, step=0.05, group="Data",
                                 tooltip="Random contrast, brightness and saturation changes of the training "
                                         "crops up to this fraction (0 = off).")
    rotate: bool = param(False, label="Random 90° rotations", group="Data",
                         tooltip="Also rotate training crops by a random multiple of 90°.")
    held_out: float = param(0.1, label="Held-out fraction", min=0.0, max=0.9, step=0.05, group="Data",
                            tooltip="Images kept out of training (at least one when there are two or more); "
                                    "their error is reported after every epoch.")
    width: float = param(0.25, label="Width", min=0.02, max=2.0, step=0.05, group="Network",
                         tooltip="Channel multiplier of the paper's networks (1 = the paper's widths; "
                                 "0.25 trains ~10× faster on a CPU).")
    autoencoder: bool = param(False, label="Autoencoder (fine-tune encoder)", group="Network",
                              tooltip="Train the CNN up to the layer together with the decoder (paper 001 §5.2); "
                                      "CNN representations only.")
    seed: int = param(0, label="Seed", min=0, max=2**31 - 1, group="Training",
                      tooltip="Seeds the split, the crops and the initial weights.")
    preview_every: int = param(10, label="Preview every", min=1, max=100000, group="Display",
                               tooltip="Send sample reconstructions every k steps.")


TRAIN_PRESETS: Presets[TrainParams] = Presets(TrainParams)
TRAIN_PRESETS.add("default", TrainParams())
TRAIN_PRESETS.add("paper", TrainParams(width=1.0, size=256, crops_per_image=1, epochs=15))


# -- data ---------------------------------------------------------------------------------------

def list_images(root: str | os.PathLike) -> list[Path]:
    root = Path(root)
    if root.is_file():
        raise ImageError(f"{root}: expected a folder of images, got a file")
    if not root.is_dir():
        raise ImageError(f"{root}: no such folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def split(files: list, held_out: float, seed: int) -> tuple[list, list]:
    """(training, held-out): a seeded random split; at least one held out when there are ≥ 2 files."""
    order = np.random.default_rng(seed).permutation(len(files))
    n_out = 0 if held_out <= 0 or len(files) < 2 else min(len(files) - 1, max(1, round(held_out * len(files))))
    out = sorted(order[:n_out].tolist())
    keep = sorted(order[n_out:].tolist())
    return [files[i] for i in keep], [files[i] for i in out]


class ImageSet:
    """Images of a folder with random crops; unreadable files are skipped and counted.

    Up to ``PRELOAD`` images are decoded once and kept (shrunk to a shorter side of at most
    ``CACHE_SIDE`` × the crop size); a larger collection (ImageNet) is read lazily, one file per
    crop, and a file that turns out unreadable is counted and replaced by another.
    """

    PRELOAD = 2000

    def __init__(self, sources: list, size: int, jitter: float = 0.0, rotate: bool = False):
        self.size, self.jitter, self.rotate = size, jitter, rotate
        self.lazy = len(sources) > self.PRELOAD
        self.images: list[np.ndarray] = []
        self.names: list[str] = []
        self.skipped: list[str] = []
        if self.lazy:
            self.names = [str(s) for s in sources]
            return
        for src in sources:
            try:
                img = load_image(src)
            except ImageError as e:
                self.skipped.append(str(e))
                continue
            self.images.append(_shrink(img, CACHE_SIDE * size))
            self.names.append(str(src))

    def __len__(self) -> int:
        return len(self.names)

    def image(self, i: int, rng: np.random.Generator) -> np.ndarray:
        if not self.lazy:
            return self.images[i]
        for _ in range(100):
            try:
                return _shrink(load_image(self.names[i]), CACHE_SIDE * self.size)
            except ImageError as e:
                self.skipped.append(str(e))
                i = int(rng.integers(len(self.names)))
        raise ImageError("more than 100 unreadable images in a row; is this a folder of images?")

    def crop(self, i: int, rng: np.random.Generator) -> np.ndarray:
        """A random square crop (side between the crop size and the shorter side), resized, maybe flipped."""
        import cv2

        img = self.image(i, rng)
        h, w = img.shape[:2]
        short = min(h, w)
        side = int(rng.integers(min(self.size, short), short + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        patch = img[y:y + side, x:x + side]
        if side != self.size:
            interp = cv2.INTER_AREA if side > self.size else cv2.INTER_LINEAR
            patch = cv2.resize(patch, (self.size, self.size), interpolation=interp)
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        if self.rotate:
            patch = np.rot90(patch, int(rng.integers(4)))
        if self.jitter > 0:
            j = self.jitter
            gray = patch @ np.array([0.299, 0.587, 0.114], np.float32)
            mean = float(gray.mean())
            sat = 1 + j * float(rng.uniform(-1, 1))
            con = 1 + j * float(rng.uniform(-1, 1))
            bri = 0.5 * j * float(rng.uniform(-1, 1))
            patch = gray[..., None] + sat * (patch - gray[..., None])
            patch = np.clip(mean + con * (patch - mean) + bri, 0, 1).astype(np.float32)
        return np.ascontiguousarray(patch)

    def centre(self, i: int) -> np.ndarray:
        return resize_center_crop(self.image(i, np.random.default_rng(i)), self.size)


def _shrink(img: np.ndarray, max_short: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    if min(h, w) <= max_short:
        return img
    f = max_short / min(h, w)
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _batch(arrs: list[np.ndarray], device) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).to(device)


# -- checkpoints ----------------------------------------------------------------------------------

@dataclass
class Loaded:
    net: nets.Decoder
    meta: dict[str, Any]
    encoder: dict[str, torch.Tensor] | None
    optimizer: dict | None
    epoch: int


def save_checkpoint(path: str | os.PathLike, net: nets.Decoder, meta: dict, encoder=None, optimizer=None,
                    epoch: int = 0, half: bool = False) -> Path:
    """Write a checkpoint atomically; ``half`` stores the weights in float16 (shipped decoders)."""
    state = net.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    obj = {"invgui_decoder": FORMAT, "meta": meta, "decoder": state,
           "encoder": encoder, "optimizer": optimizer, "epoch": int(epoch)}
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: str | os.PathLike) -> Loaded:
    """Load a decoder file safely (``weights_only=True``); clear errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise DecoderError(f"{path}: no such decoder file")
    try:
        check_archive(path)
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except TooLargeError as e:
        raise DecoderError(str(e)) from None
    except Exception as e:
        if "weights_only" in str(e) or "Unsupported" in str(e):
            raise DecoderError(f"{path}: refused — it holds pickled objects beyond tensors and plain values, which "
                               "could run code when loaded; invgui loads decoders with weights_only=True only "
                               "(decoders made by `invgui train-decoder` are plain)") from None
        first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise DecoderError(f"{path}: not a readable decoder checkpoint ({first})") from None
    if not isinstance(obj, dict) or obj.get("invgui_decoder") is None or "meta" not in obj:
        raise DecoderError(f"{path}: not an invgui decoder checkpoint (made by `invgui train-decoder`)")
    fmt = obj["invgui_decoder"]
    if not isinstance(fmt, int) or isinstance(fmt, bool):
        raise DecoderError(f"{path}: invgui_decoder should be a format number, not {type(fmt).__name__}")
    if fmt > FORMAT:
        raise DecoderError(f"{path}: decoder format {fmt} is newer than this invgui reads ({FORMAT})")
    meta = check_meta(obj["meta"], path)
    state = _tensor_dict(obj.get("decoder"), path, "decoder")
    encoder = None if obj.get("encoder") is None else _tensor_dict(obj["encoder"], path, "encoder")
    optimizer = obj.get("optimizer")
    if optimizer is not None and not isinstance(optimizer, dict):
        raise DecoderError(f"{path}: optimizer should be a dict or None, not {type(optimizer).__name__}")
    epoch = obj.get("epoch", 0)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise DecoderError(f"{path}: epoch should be a whole number ≥ 0, not {epoch!r:.40}")
    # Build the described network on the meta device first (no memory), and compare every shape
    # with the file's tensors: a description that does not fit them is refused before a real
    # network — possibly a huge one — is allocated.
    try:
        with torch.device("meta"):
            shell = nets.build(meta["architecture"], tuple(meta["feature_shape"]), meta["stride"], meta["width"])
    except (RuntimeError, ValueError, TypeError, ZeroDivisionError) as e:
        raise DecoderError(f"{path}: no decoder can be built from its description ({str(e)[:200]})") from None
    want = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    if want != have:
        diff = sorted(set(want) ^ set(have)) or [k for k in want if want[k] != have[k]]
        k = diff[0]
        raise DecoderError(f"{path}: the decoder's weights do not fit its description ({len(diff)} difference(s), "
                           f"e.g. {k}: described {want.get(k, 'absent')}, stored {have.get(k, 'absent')})")
    try:
        net = nets.build(meta["architecture"], tuple(meta["feature_shape"]), meta["stride"], meta["width"])
        net.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as e:
        raise DecoderError(f"{path}: the decoder's weights do not fit its description ({str(e)[:200]})") from None
    net.eval().requires_grad_(False)
    meta = {**meta, "file": str(path)}
    return Loaded(net, meta, encoder, optimizer, epoch)


MAX_FEATURE_VALUES = 1 << 24        # C·H·W of a layer a decoder may take (EfficientNet's first block: 0.4 M)


def check_meta(meta: Any, path: str | os.PathLike) -> dict:
    """The checkpoint's metadata when every field a decoder needs has the right type and a sane
    size; a :class:`DecoderError` naming the file and the field otherwise."""
    def bad(key: str, what: str) -> DecoderError:
        return DecoderError(f"{path}: meta[{key!r}] {what}")

    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if not isinstance(meta, dict):
        raise DecoderError(f"{path}: meta should be a dict, not {type(meta).__name__}")
    for key in ("architecture", "representation", "layer"):
        if not isinstance(meta.get(key), str):
            raise bad(key, f"should be text, not {type(meta.get(key)).__name__}")
    if meta["architecture"] not in nets.KINDS:
        raise bad("architecture", f"{meta['architecture']!r:.40} is not one of {', '.join(nets.KINDS)}")
    shape = meta.get("feature_shape")
    if (not isinstance(shape, (list, tuple)) or not 1 <= len(shape) <= 3
            or not all(whole(v) and 1 <= v <= 1 << 16 for v in shape)):
        raise bad("feature_shape", f"should be 1 to 3 whole numbers in 1…65536, not {shape!r:.60}")
    if math.prod(shape) > MAX_FEATURE_VALUES:
        raise bad("feature_shape", f"{shape} has more than {MAX_FEATURE_VALUES} values")
    if (len(shape) == 1) != (meta["architecture"] == "fc"):
        raise bad("feature_shape", f"{shape} does not suit a {meta['architecture']} decoder")
    if not whole(meta.get("stride")) or not 1 <= meta["stride"] <= 4096:
        raise bad("stride", f"should be a whole number in 1…4096, not {meta.get('stride')!r:.40}")
    lo, hi = TrainParams.__dataclass_fields__["width"].metadata["min"], \
        TrainParams.__dataclass_fields__["width"].metadata["max"]
    if not number(meta.get("width")) or not lo <= meta["width"] <= hi:
        raise bad("width", f"should be a number in {lo}…{hi}, not {meta.get('width')!r:.40}")
    if not whole(meta.get("input_size")) or not 16 <= meta["input_size"] <= 4096:
        raise bad("input_size", f"should be a whole number of pixels in 16…4096, not {meta.get('input_size')!r:.40}")
    for key, types in (("representation_params", (dict,)), ("weights", (str,)), ("training", (dict,)),
                       ("normalisation", (dict,)), ("versions", (dict,))):
        if meta.get(key) is not None and not isinstance(meta[key], types):
            raise bad(key, f"should be a {types[0].__name__} or None, not {type(meta[key]).__name__}")
    for key in ("autoencoder", "grayscale_features"):
        if key in meta and not isinstance(meta[key], bool):
            raise bad(key, f"should be true or false, not {meta[key]!r:.40}")
    for key in ("epochs", "parameters", "training_steps"):
        if meta.get(key) is not None and not (whole(meta[key]) and meta[key] >= 0):
            raise bad(key, f"should be a whole number ≥ 0, not {meta[key]!r:.40}")
    for key in ("held_out_mse", "held_out_normalised_error", "training_seconds"):
        if meta.get(key) is not None and not number(meta[key]):
            raise bad(key, f"should be a number or None, not {meta[key]!r:.40}")
    return meta


def _load_encoder(rep: Representation, encoder: dict, source: str) -> None:
    if not hasattr(rep, "model"):
        raise DecoderError(f"{source}: holds a fine-tuned encoder, but {rep.name} has no weights to take it")
    try:
        rep.model.load_state_dict(encoder)
    except RuntimeError as e:
        raise DecoderError(f"{source}: its fine-tuned encoder does not fit {rep.name} "
                           f"({str(e).splitlines()[0][:160]})") from None


def _tensor_dict(obj: Any, path, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                            for k, v in obj.items()):
        raise DecoderError(f"{path}: {what} should be a state dict (names → tensors), not {type(obj).__name__}")
    return obj


def check_match(meta: dict, rep: Representation, layer: str, source: str) -> None:
    """Refuse a decoder trained for another representation, layer or parameters, saying what differs."""
    problems = []
    if meta.get("representation") != rep.name:
        problems.append(f"representation {meta.get('representation')!r} (here {rep.name!r})")
    if meta.get("layer") != layer:
        problems.append(f"layer {meta.get('layer')!r} (here {layer!r})")
    mine = rep.describe().get("representation_params")
    theirs = meta.get("representation_params")
    if (mine or theirs) and mine != theirs:
        problems.append(f"representation parameters {theirs} (here {mine})")
    if meta.get("weights") and meta.get("weights") != rep.weights_info:
        problems.append(f"weights {meta['weights']!r} (here {rep.weights_info!r})")
    if problems:
        raise DecoderError(f"{source}: this decoder was trained for " + "; ".join(problems)
                           + ". Pick a decoder for this representation and layer, or train one with "
                             "`invgui train-decoder`.")


def shipped_decoders() -> dict[str, Path]:
    """Decoders shipped in ``resources/decoders`` (name → file)."""
    folder = Path(__file__).resolve().parents[3] / "resources" / "decoders"
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.pt")) if not p.name.startswith(".") and ".training" not in p.name}


def find_shipped(rep_name: str, layer: str) -> Path | None:
    """The shipped decoder for ``rep_name`` at ``layer`` (by its metadata), if any."""
    for path in shipped_decoders().values():
        key = (str(path), path.stat().st_mtime)
        if key not in _SHIPPED_TARGETS:              # read each file's metadata once
            try:
                meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
                _SHIPPED_TARGETS[key] = (meta.get("representation"), meta.get("layer"))
            except Exception:
                _SHIPPED_TARGETS[key] = (None, None)
        if _SHIPPED_TARGETS[key] == (rep_name, layer):
            return path
    return None


_SHIPPED_TARGETS: dict[tuple[str, float], tuple[str | None, str | None]] = {}


# -- training -------------------------------------------------------------------------------------

def lr_factor(p: TrainParams, progress: float) -> float:
    """Multiplier of the learning rate at ``progress`` ∈ [0, 1] of training."""
    if progress <= p.decay_from or p.decay_from >= 1:
        return 1.0
    t = (progress - p.decay_from) / (1 - p.decay_from)
    return float(max(p.final_lr, 1e-12) ** t)


def train(rep: Representation, layer: str | None, data: str | os.PathLike | list, out: str | os.PathLike,
          params: TrainParams = TrainParams(), *, device: str | torch.device = "cpu",
          should_stop: Callable[[], bool] | None = None, resume: str | os.PathLike | None = None,
          held_out_data: str | os.PathLike | list | None = None) -> Iterator[Event]:
    """Train a decoder for ``rep`` at ``layer`` on the images under ``data``; write ``out``.

    ``data`` is a folder (searched recursively) or a list of image sources; ``held_out_data``
    (the same kinds), when given, is the held-out set instead of a random split.  Yields ``Step``s
    (losses ``train`` per step and ``held_out`` after each epoch; a preview strip of held-out
    originals over their reconstructions) and a final ``Result`` whose images are the held-out
    reconstructions.  A checkpoint is written after every epoch (atomically), so a stopped or
    killed run can be resumed with ``resume=out``.
    """
    p = check(params, "training parameters")
    device = torch.device(device)
    layer = rep.resolve_layer(layer)
    loaded = None
    if resume:
        # A resumed checkpoint keeps its own architecture: the network is rebuilt from its metadata,
        # and what is saved must describe that network, whatever the flags say.
        loaded = load_checkpoint(resume)
        check_match(loaded.meta, rep, layer, str(resume))
        kept = {"width": float(loaded.meta["width"]), "size": int(loaded.meta["input_size"])}
        if loaded.encoder is not None:      # a fine-tuned encoder stays fine-tuned (and saved)
            kept["autoencoder"] = True
        changed = [f"{k} {getattr(p, k)} → {v}" for k, v in kept.items() if getattr(p, k) != v]
        p = dataclasses.replace(p, **kept)
        if changed:
            yield Status(f"resuming {resume}: keeping the checkpoint's " + ", ".join(changed))
    torch.manual_seed(p.seed)
    rng = np.random.default_rng(p.seed)
    sources = list_images(data) if not isinstance(data, list) else list(data)
    if held_out_data is not None:
        train_src = sources
        held_src = list_images(held_out_data) if not isinstance(held_out_data, list) else list(held_out_data)
    else:
        train_src, held_src = split(sources, p.held_out, p.seed)
    yield Status(f"reading {len(sources)} images")
    train_set, held_set = ImageSet(train_src, p.size, p.colour_jitter, p.rotate), ImageSet(held_src, p.size)
    skipped = train_set.skipped + held_set.skipped
    if len(train_set) == 0:
        raise ImageError(f"{data}: no readable training images" + (f" ({len(skipped)} unreadable)" if skipped else ""))
    info = rep.layer_info(layer, p.size)
    if not info.fits:
        raise RepresentationError(f"{rep.name} {layer} does not fit a {p.size}×{p.size} crop: {info.error}")
    family = REGISTRY[rep.name].family if rep.name in REGISTRY else "cnn"
    kind = nets.kind_for(family, info.shape)
    if p.autoencoder and not hasattr(rep, "model"):
        raise RepresentationError(f"{rep.name} has no weights to fine-tune: autoencoder mode needs a CNN")

    rep.to(device)
    encoder_params: list[torch.nn.Parameter] = []
    if p.autoencoder:
        rep.model.requires_grad_(True)
        rep.model.train(False)
        encoder_params = [q for q in rep.model.parameters()]
    start_epoch, opt_state = 0, None
    if loaded is not None:
        net = loaded.net.requires_grad_(True)
        if loaded.encoder is not None and p.autoencoder:
            _load_encoder(rep, loaded.encoder, str(resume))
        start_epoch, opt_state = loaded.epoch, loaded.optimizer
        yield Status(f"resuming {resume} after epoch {start_epoch}")
    else:
        net = nets.build(kind, info.shape, info.stride or 1, p.width)
        with torch.no_grad():
            probe = _batch([train_set.crop(int(rng.integers(len(train_set))), rng) for _ in range(min(p.batch, 32))],
                           device)
            net.set_scale(rep.features(probe, layer).cpu())
    net.to(device).train()
    opt = torch.optim.Adam(list(net.parameters()) + encoder_params, lr=p.lr, betas=(0.9, 0.999))
    if opt_state:
        try:
            opt.load_state_dict(opt_state)
        except ValueError:
            pass                                     # e.g. autoencoder switched: start Adam afresh
    held = []
    for i in range(min(len(held_set), MAX_HELD_OUT)):      # a big collection: evaluate a fixed subset
        try:
            held.append(held_set.centre(i))
        except ImageError:
            pass
    eval_n = metrics.mean_pairwise_distance(held) if len(held) >= 2 else None
    meta = {
        "method": "decoder", **rep.describe(), "layer": layer, "input_size": p.size,
        "feature_shape": list(info.shape), "stride": int(info.stride or 1), "architecture": kind,
        "width": p.width, "parameters": nets.count_parameters(net), "normalisation": {"mean": list(rep.mean),
                                                                                        "std": list(rep.std)},
        "grayscale_features": bool(rep.grayscale), "autoencoder": p.autoencoder,
        "training": {"data": _describe(data), "held_out_data": _describe(held_out_data) if held_out_data
                     else f"random {p.held_out:.0%} of the data", "images": len(train_set),
                     "held_out_images": len(held_set), "skipped": len(skipped), "params": to_dict(p)},
        "versions": library_versions(),
    }
    if skipped:
        yield Status(f"skipped {len(skipped)} unreadable file(s), e.g. {skipped[0]}")
    yield Status(f"training a {kind} decoder ({meta['parameters'] / 1e6:.2f} M parameters) on {len(train_set)} "
                 f"images ({len(held_set)} held out) for {rep.name} {layer} {'×'.join(map(str, info.shape))}")

    steps_per_epoch = max(1, math.ceil(len(train_set) * p.crops_per_image / p.batch))
    total = steps_per_epoch * p.epochs
    history: dict[str, list[float]] = {"train": [], "held_out": []}
    t0 = time.perf_counter()
    step = start_epoch * steps_per_epoch
    stopped, message = False, ""
    held_err = float("nan")
    recon = np.zeros((0, p.size, p.size, 3), np.float32)
    meta["epochs"] = start_epoch
    evaluated_at = -1                       # the step of the last full held-out evaluation
    try:
        for epoch in range(start_epoch, p.epochs):
            order = np.concatenate([rng.permutation(len(train_set)) for _ in range(p.crops_per_image)])
            for s in range(steps_per_epoch):
                idx = order[s * p.batch:(s + 1) * p.batch]
                if len(idx) == 0:
                    idx = rng.integers(0, len(train_set), p.batch)
                x = _batch([train_set.crop(int(i), rng) for i in idx], device)
                factor = lr_factor(p, step / max(total, 1))
                for g in opt.param_groups:
                    g["lr"] = p.lr * factor
                with torch.enable_grad():
                    if p.autoencoder:
                        phi = rep.features(x, layer)
                    else:
                        with torch.no_grad():
                            phi = rep.features(x, layer)
                    y = net(phi, x.shape[-2:])
                    loss = F.mse_loss(y, x)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                opt.step()
                step += 1
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise FloatingPointError(f"the training loss became {value} at step {step}; lower the "
                                             f"learning rate (now {p.lr:g})")
                history["train"].append(value)
                last_of_epoch = s == steps_per_epoch - 1
                losses = {"train": value}
                preview = None
                if last_of_epoch and held:
                    held_err, recon = _evaluate(net, rep, layer, held, device, p.batch)
                    losses["held_out"] = held_err
                    history["held_out"].append(held_err)
                    evaluated_at = step
                if held and (step % p.preview_every == 0 or last_of_epoch):
                    # Between epochs, reconstruct only the four images the preview shows.
                    shown = recon[:4] if evaluated_at == step else _evaluate(net, rep, layer, held[:4], device,
                                                                              p.batch)[1]
                    preview = _strip(held[:4], shown)
                yield Step(i=step, total=total, losses=losses, lr=p.lr * factor,
                           elapsed=time.perf_counter() - t0, preview=preview)
                if should_stop is not None and should_stop():
                    stopped, message = True, f"stopped by the user at step {step} of {total}"
                    break
            meta["epochs"] = epoch + 1 if not stopped else epoch
            meta["held_out_mse"] = held_err if math.isfinite(held_err) else None
            if not stopped:
                save_checkpoint(out, net, _finish_meta(meta, held, recon, eval_n, time.perf_counter() - t0, step),
                                encoder=rep.model.state_dict() if p.autoencoder else None,
                                optimizer=opt.state_dict(), epoch=epoch + 1)
            if stopped:
                break
    finally:
        if p.autoencoder:
            rep.model.requires_grad_(False)
        net.eval().requires_grad_(False)
    if held and evaluated_at != step:       # stopped mid-epoch (or resumed a finished run): evaluate now
        held_err, recon = _evaluate(net, rep, layer, held, device, p.batch)
    final = _finish_meta(meta, held, recon, eval_n, time.perf_counter() - t0, step)
    if stopped and step > start_epoch * steps_per_epoch:
        save_checkpoint(out, net, final, encoder=rep.model.state_dict() if p.autoencoder else None,
                        optimizer=opt.state_dict(), epoch=meta["epochs"])
        message += f"; the checkpoint holds {meta['epochs']} complete epoch(s) of training plus this one's steps"
    m = {k: v for k, v in final.items() if k.startswith("held_out") and v is not None}
    m.update({"steps": step, "seconds": time.perf_counter() - t0,
              "images_per_second": (step - start_epoch * steps_per_epoch) * p.batch
              / max(time.perf_counter() - t0, 1e-9),
              "training_images": len(train_set), "skipped": len(train_set.skipped) + len(held_set.skipped)})
    yield Result(images=recon if len(recon) else np.zeros((1, p.size, p.size, 3), np.float32),
                 target=held[0] if held else None, history=history, metrics=m,
                 record={**final, "checkpoint": str(out)}, stopped=stopped, message=message)


def _describe(data) -> str:
    if isinstance(data, list):
        shown = ", ".join(map(str, data[:20])) + (", …" if len(data) > 20 else "")
        return f"{len(data)} images: {shown}"
    return str(data)


def _finish_meta(meta, held, recon, eval_n, seconds, steps) -> dict:
    out = dict(meta)
    if held and len(recon):
        errs = [float(np.sqrt(((r - h) ** 2).sum())) for r, h in zip(recon, held)]
        out["held_out_mse"] = float(np.mean([((r - h) ** 2).mean() for r, h in zip(recon, held)]))
        if eval_n:
            out["held_out_normalised_error"] = float(np.mean(errs) / eval_n)
    out["training_seconds"] = round(seconds, 2)
    out["training_steps"] = steps
    return out


@torch.no_grad()
def _evaluate(net, rep, layer, held, device, batch) -> tuple[float, np.ndarray]:
    was = net.training
    net.eval()
    outs = []
    for i in range(0, len(held), batch):
        x = _batch(held[i:i + batch], device)
        outs.append(net(rep.features(x, layer), x.shape[-2:]).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy())
    net.train(was)
    recon = np.concatenate(outs)
    return float(np.mean((recon - np.stack(held)) ** 2)), recon


def _strip(originals: list[np.ndarray], recon: np.ndarray) -> np.ndarray:
    """Originals on top, reconstructions below, as one uint8 image."""
    top = np.concatenate(list(originals), axis=1)
    bottom = np.concatenate(list(recon[:len(originals)]), axis=1)
    return to_uint8(np.concatenate([top, bottom], axis=0))


# -- reconstruction -------------------------------------------------------------------------------

def reconstruct(loaded: Loaded, rep: Representation, phi: torch.Tensor, size: int) -> torch.Tensor:
    """One forward pass: features N×… → images N×3×size×size in [0, 1]."""
    with torch.no_grad():
        return loaded.net(phi, (size, size)).clamp(0, 1)


def prepare(rep: Representation, decoder: str | os.PathLike | Loaded, layer: str | None,
            device) -> tuple[Loaded, str]:
    """Load (or take) a decoder, check it fits ``rep``/``layer`` (default: the decoder's layer), move it."""
    loaded = decoder if isinstance(decoder, Loaded) else load_checkpoint(decoder)
    source = str(decoder) if not isinstance(decoder, Loaded) else loaded.meta.get("file", "the decoder")
    if loaded.meta.get("representation") != rep.name:        # say that first, before any layer error
        check_match(loaded.meta, rep, layer or loaded.meta.get("layer"), source)
    layer = rep.resolve_layer(layer or loaded.meta.get("layer"))
    check_match(loaded.meta, rep, layer, source)
    if loaded.encoder is not None:                      # autoencoder: the fine-tuned encoder
        _load_encoder(rep, loaded.encoder, source)
    loaded.net.to(device)
    rep.to(device)
    return loaded, layer


def run(rep: Representation, image: np.ndarray | list[np.ndarray] | None, layer: str | None,
        decoder: str | os.PathLike | Loaded, *, size: int = 0, device: str | torch.device = "cpu",
        target_features: torch.Tensor | None = None, eval_distance: float | None = None,
        should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
    """Reconstruct ``image`` — or a list of images, as one batch — (or ``target_features``, C×… or
    N×C×…) with a trained decoder: one forward pass.

    ``size`` (default: the decoder's training crop size) is the side of the input the features
    are computed at and of the output.  Yields a ``Status`` and a ``Result`` like the
    optimisation method (no iterations; metrics: representation error of the reconstruction,
    PSNR/SSIM and, with ``eval_distance``, the normalised reconstruction error — means over the
    batch, with ``*_per_image`` lists — and the seconds of the forward pass).
    """
    if image is None and target_features is None:
        raise ValueError("give an image or target features")
    device = torch.device(device)
    yield Status("loading the decoder")
    loaded, layer = prepare(rep, decoder, layer, device)
    meta = loaded.meta
    # Fully convolutional decoders work at any size; the fully connected one only at its own.
    size = int(meta["input_size"]) if meta["architecture"] == "fc" or not size else size
    rep.check_input(layer, size)
    images_in = [image] if isinstance(image, np.ndarray) else list(image or [])
    targets = [resize_center_crop(im, size) for im in images_in]
    t0 = time.perf_counter()
    with torch.no_grad():
        if target_features is not None:
            phi0 = target_features.to(device=device, dtype=torch.float32)
            if phi0.dim() == len(meta["feature_shape"]):
                phi0 = phi0[None]
        else:
            phi0 = rep.features(torch.from_numpy(np.stack(targets)).permute(0, 3, 1, 2).to(device), layer)
        x = reconstruct(loaded, rep, phi0, size)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        images = x.permute(0, 2, 3, 1).cpu().numpy()
        rep_errs = metrics.representation_error(rep.features(x, layer), phi0).cpu().numpy()
    m: dict[str, Any] = {"representation_error": float(rep_errs.mean()), "seconds": seconds, "iterations": 0,
                         "iterations_per_second": 0.0, "start_representation_error": float("nan"),
                         "images": len(images), "images_per_second": len(images) / max(seconds, 1e-9)}
    if len(images) > 1:
        m["representation_error_per_image"] = rep_errs.tolist()
    pairs = list(zip(images, targets)) if len(targets) == len(images) else []
    for key, fn in (("psnr", metrics.psnr), ("ssim", metrics.ssim)) if pairs else ():
        vals = [fn(a, b) for a, b in pairs]
        m[key] = float(np.mean(vals))
        if len(vals) > 1:
            m[f"{key}_per_image"] = vals
    if pairs and eval_distance:
        vals = [metrics.normalised_reconstruction_error(a, b, eval_distance) for a, b in pairs]
        m["normalised_reconstruction_error"] = float(np.mean(vals))
        if len(vals) > 1:
            m["normalised_reconstruction_error_per_image"] = vals
        m["eval_distance"] = eval_distance
    record = {"method": "decoder", **rep.describe(), "weights_file": rep.weights_file, "layer": layer,
              "layer_shape": list(phi0.shape[1:]), "input_size": size, "device": str(device),
              "target": "features" if target_features is not None else "image",
              "decoder": str(decoder) if not isinstance(decoder, Loaded) else meta.get("file", "(in memory)"),
              "decoder_meta": {k: meta.get(k) for k in ("architecture", "width", "input_size", "epochs",
                                                         "held_out_mse", "held_out_normalised_error",
                                                         "autoencoder", "training")},
              "params": {"size": size},
              "relative_depth": round(rep.layer_info(layer, size).relative_depth, 4)}
    yield Result(images=images, target=targets[0] if targets else None, history={}, metrics=m, record=record)
