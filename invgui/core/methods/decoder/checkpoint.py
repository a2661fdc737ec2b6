"""Decoder checkpoints: saving, loading with ``weights_only=True`` and checking every field
before a tensor is allocated; the shipped decoders."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...errors import InvguiError
from ...files import atomic_write
from ...layout import Layout, plain
from ...representations import Representation
from ...resources import resource
from ...safeload import TooLargeError, check_archive
from . import nets

FORMAT = 1


class DecoderError(InvguiError):
    """A decoder checkpoint cannot be used here; the message says why."""


@dataclass
class Loaded:
    net: nets.Decoder
    meta: dict[str, Any]
    encoder: dict[str, torch.Tensor] | None
    optimizer: dict | None
    epoch: int
    discriminator: dict[str, torch.Tensor] | None = None      # the adversarial term's critic (to resume)
    discriminator_optimizer: dict | None = None


def save_checkpoint(path: str | os.PathLike, net: nets.Decoder, meta: dict, encoder=None, optimizer=None,
                    epoch: int = 0, half: bool = False, discriminator=None, discriminator_optimizer=None) -> Path:
    """Write a checkpoint atomically; ``half`` stores the weights in float16 (shipped decoders)."""
    state = net.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    obj = {"invgui_decoder": FORMAT, "meta": meta, "decoder": state,
           "encoder": encoder, "optimizer": optimizer, "epoch": int(epoch)}
    if discriminator is not None:
        obj.update(discriminator=discriminator, discriminator_optimizer=discriminator_optimizer)
    def write(tmp: str) -> None:
        try:
            torch.save(obj, tmp)
        except RuntimeError:                # PyTorch's zip writer: "[enforce fail …] unexpected pos …"
            import shutil

            try:
                free = f"{shutil.disk_usage(Path(tmp).parent).free / 2**20:.0f} MiB free there"
            except OSError:
                free = "free space unknown"
            raise OSError(f"could not write {path}: file too large or disk full ({free}); the previous "
                          "checkpoint, if any, is kept") from None

    return atomic_write(path, write)


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
    d_opt = obj.get("discriminator_optimizer")
    for what, v in (("optimizer", optimizer), ("discriminator_optimizer", d_opt)):
        if v is not None and not isinstance(v, dict):
            raise DecoderError(f"{path}: {what} should be a dict or None, not {type(v).__name__}")
    disc = None if obj.get("discriminator") is None else _tensor_dict(obj["discriminator"], path, "discriminator")
    epoch = obj.get("epoch", 0)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise DecoderError(f"{path}: epoch should be a whole number ≥ 0, not {epoch!r:.40}")
    # Build the described network on the meta device first (no memory), and compare every shape
    # with the file's tensors: a description that does not fit them is refused before a real
    # network — possibly a huge one — is allocated.
    try:
        with torch.device("meta"):
            shell = nets.build(meta["architecture"], tuple(meta["feature_shape"]), meta["stride"], meta["width"],
                               layout_of(meta))
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
        net = nets.build(meta["architecture"], tuple(meta["feature_shape"]), meta["stride"], meta["width"],
                         layout_of(meta))
        net.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as e:
        raise DecoderError(f"{path}: the decoder's weights do not fit its description ({str(e)[:200]})") from None
    net.eval().requires_grad_(False)
    meta = {**meta, "file": str(path)}
    return Loaded(net, meta, encoder, optimizer, epoch, disc, d_opt)


def layout_of(meta: dict) -> Layout:
    """The layout of the features a decoder takes (decoders from before layouts: C×H×W or C)."""
    if meta.get("layout") is None:
        return plain(tuple(meta["feature_shape"]))
    return Layout.from_dict(meta["layout"])


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
    try:
        layout = layout_of(meta)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise bad("layout", f"is not a layout ({meta.get('layout')!r:.80})") from None
    if layout.shape != tuple(shape):
        raise bad("layout", f"describes {layout.shape}, not the feature shape {tuple(shape)}")
    if (layout.grid is None) != (meta["architecture"] == "fc"):
        raise bad("feature_shape", f"{shape} does not suit a {meta['architecture']} decoder")
    if not whole(meta.get("stride")) or not 1 <= meta["stride"] <= 4096:
        raise bad("stride", f"should be a whole number in 1…4096, not {meta.get('stride')!r:.40}")
    lo, hi = nets.WIDTH_MIN, nets.WIDTH_MAX
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
    if meta.get("method", "decoder") != "decoder":
        raise bad("method", f"should be 'decoder', not {meta.get('method')!r:.40}")
    if "epochs" in meta and not (whole(meta["epochs"]) and meta["epochs"] >= 0):
        raise bad("epochs", f"should be a whole number ≥ 0, not {meta['epochs']!r:.40}")
    for key in ("parameters", "training_steps"):
        if meta.get(key) is not None and not (whole(meta[key]) and meta[key] >= 0):
            raise bad(key, f"should be a whole number ≥ 0, not {meta[key]!r:.40}")
    for key in ("held_out_mse", "held_out_normalised_error", "training_seconds"):
        if meta.get(key) is not None and not number(meta[key]):
            raise bad(key, f"should be a number or None, not {meta[key]!r:.40}")
    return meta


def _load_encoder(rep: Representation, encoder: dict, source: str) -> None:
    if rep.model is None:
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
    for k, v in obj.items():                   # a NaN weight makes every reconstruction NaN: refuse it here
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            n = int((~torch.isfinite(v)).sum())
            raise DecoderError(f"{path}: {what} tensor {k!r} holds {n} NaN or infinite value(s); the decoder "
                               "is damaged (its training diverged?) — retrain it or use an earlier checkpoint")
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
    folder = resource("decoders")
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.pt")) if not p.name.startswith(".") and ".training" not in p.name}


def training_loss(meta: dict) -> str:
    """The loss a decoder was trained on, from its metadata: the terms that had a weight, joined by
    '+' ("pixel", "pixel+feature+adversarial", …; paper 001 §3 and appendix A)."""
    tp = (meta.get("training") or {}).get("params") or {}
    terms = [name for name, w in (("pixel", tp.get("pixel_weight", 1.0)), ("feature", tp.get("feature_weight")),
                                   ("adversarial", tp.get("adversarial_weight"))) if w]
    return "+".join(terms) or "pixel"


def shipped_for(rep_name: str, layer: str) -> list[tuple[Path, str]]:
    """The shipped decoders for ``rep_name`` at ``layer`` (by their metadata) as (file, training
    loss): one trained on the pixel loss alone first (the measured, predictable default), then by
    name."""
    found = []
    for path in shipped_decoders().values():
        key = (str(path), path.stat().st_mtime)
        if key not in _SHIPPED_TARGETS:              # read each file's metadata once
            try:
                meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
                _SHIPPED_TARGETS[key] = (meta.get("representation"), meta.get("layer"), training_loss(meta))
            except Exception:
                _SHIPPED_TARGETS[key] = (None, None, "")
        rep, lay, loss = _SHIPPED_TARGETS[key]
        if (rep, lay) == (rep_name, layer):
            found.append((loss != "pixel", path.name, path, loss))
    return [(path, loss) for _, _, path, loss in sorted(found)]


def shipped_layers(rep_name: str) -> list[str]:
    """The layers of ``rep_name`` that a shipped decoder is for."""
    shipped_for(rep_name, "")                        # reads (and caches) every shipped file's target
    now = {(str(p), p.stat().st_mtime) for p in shipped_decoders().values()}
    return sorted({lay for key, (rep, lay, _) in _SHIPPED_TARGETS.items() if key in now and rep == rep_name and lay})


def find_shipped(rep_name: str, layer: str) -> Path | None:
    """The default shipped decoder for ``rep_name`` at ``layer`` (the first of :func:`shipped_for`)."""
    found = shipped_for(rep_name, layer)
    return found[0][0] if found else None


def decoder_file(value: str | os.PathLike) -> Path:
    """A decoder named by its file or, when no such file exists, by a shipped decoder's name
    (``hog-adversarial``; `invgui layers MODEL` lists them)."""
    path = Path(value)
    if not path.exists() and str(value) in (shipped := shipped_decoders()):
        return shipped[str(value)]
    return path


_SHIPPED_TARGETS: dict[tuple[str, float], tuple[str | None, str | None, str]] = {}


# -- training -------------------------------------------------------------------------------------

