"""Issue 29: vision transformers and channels-last backbones as first-class representations —
layouts, windows, Φ0, optimisation, decoders, probes, sessions — offline, with random weights,
at small input sides (timm's ``dynamic_img_size``)."""

import json

import numpy as np
import pytest
import torch

from invgui.core import representations as R
from invgui.core.events import Result, Status
from invgui.core.layout import Layout, detect
from invgui.core.methods import decoder as D
from invgui.core.methods import probe as P
from invgui.core.methods.optimize import OptimizeParams
from invgui.core.methods.registry import DECODER, OPTIMIZE
from invgui.core.request import RunRequest, execute
from invgui.core.session import Run, Session
from invgui.core.subsets import SubsetError, mask

timm = pytest.importorskip("timm")

# arch, input side, layer, how the tree says its output, stride
ARCHS = {
    "vit": ("timm:vit_tiny_patch16_224", 64, "blocks.5", "1 class + 4×4 patches × 192", 16),
    "deit": ("timm:deit_tiny_distilled_patch16_224", 64, "blocks.2", "1 class + 1 distillation + 4×4 patches × 192",
             16),
    "registers": ("timm:vit_small_patch14_reg4_dinov2", 56, "blocks.2", "1 class + 4 registers + 4×4 patches × 384",
                  14),
    "swin": ("timm:swin_tiny_patch4_window7_224", 64, "layers.1", "8×8×192 (channels last)", 8),
    "convnext": ("timm:convnext_atto", 64, "stages.1", "80×8×8", 8),
}


def run(request: RunRequest) -> tuple[Result, list[str]]:
    events = list(execute(request))
    return next(e for e in events if isinstance(e, Result)), [e.message for e in events if isinstance(e, Status)]


def test_layouts_are_read_from_shapes_and_the_models_hints():
    assert detect((197, 192), prefix=(("class", 1),)).text() == "1 class + 14×14 patches × 192"
    assert detect((1374, 384)).text() == "5 prefix + 37×37 patches × 384"     # no hint: the square it leaves
    assert detect((196, 192)).text() == "14×14 patches × 192"                  # the patch embedding
    assert detect((56, 56, 96)).kind == "hwc" and detect((96, 56, 56)).kind == "chw"
    assert detect((8, 8, 8)).kind == "chw" and detect((8, 8, 8), channels_last=True).kind == "hwc"
    assert detect((1000,)).kind == "vector" and detect((3, 5)).kind == "unknown"
    lay = detect((21, 4), prefix=(("class", 1), ("registers", 4)))            # 5 + 4×4
    assert lay.prefix_names() == ["class", "registers 1", "registers 2", "registers 3", "registers 4"]
    assert Layout.from_dict(json.loads(json.dumps(lay.to_dict()))) == lay
    phi = torch.arange(2 * 21 * 4, dtype=torch.float32).view(2, 21, 4)
    grid = lay.spatial(phi)
    assert grid.shape == (2, 4, 4, 4) and grid[1, 3, 2, 1] == phi[1, 5 + 2 * 4 + 1, 3]


def test_windows_and_channels_select_patch_cells_and_channels_last_cells():
    vit = detect((17, 6), prefix=(("class", 1),))                              # 1 + 4×4 tokens × 6
    m = mask(vit, "2-3", "1,1,3,2")                                            # x 1…2, y 1
    on = {(int(t), int(c)) for t, c in m.nonzero()}
    assert on == {(1 + 4 + 1, 2), (1 + 4 + 1, 3), (1 + 4 + 2, 2), (1 + 4 + 2, 3)}   # the class token is outside
    assert mask(vit, "5").sum() == 17                                            # channels alone: every token
    hwc = detect((4, 4, 6))
    assert {tuple(map(int, i)) for i in mask(hwc, "0", "centre:1").nonzero()} == {(1, 1, 0)}
    with pytest.raises(SubsetError, match="inverts as a whole"):
        mask(detect((3, 5)), "0")


@pytest.fixture(scope="module")
def reps():
    return {key: R.get(arch, random_weights=True) for key, (arch, *_rest) in ARCHS.items()}


@pytest.mark.parametrize("key", list(ARCHS))
def test_the_layer_tree_says_each_layout_with_its_stride(reps, key):
    arch, size, layer, text, stride = ARCHS[key]
    info = reps[key].layer_info(layer, size)
    assert info.shape_text() == text and info.stride == stride
    rf = reps[key].receptive_field(layer, size)
    assert rf is not None and stride <= rf <= size


def test_swin_window_attention_is_not_offered_as_a_per_image_layer(reps):
    info = reps["swin"].layer_info("layers.0.blocks.0.attn", 64)
    assert not info.fits and info.shape_text() == "not per image" and "apart" in info.error


def test_a_timm_model_takes_its_mean_std_and_size_from_pretrained_cfg(reps):
    dino = reps["registers"]
    assert dino.input_size == 518 and dino.patch == 14
    assert dino.mean == tuple(dino.model.pretrained_cfg["mean"]) and dino.std == tuple(dino.model.pretrained_cfg["std"])
    assert dino.fit_size(60) == (56, "timm:vit_small_patch14_reg4_dinov2 cuts its input into 14-px patches: the run "
                                     "uses 56 px instead of 60")


@pytest.mark.slow
@pytest.mark.parametrize("key", list(ARCHS))
def test_each_architecture_optimises_trains_a_decoder_probes_and_keeps_its_session(reps, key, photos, tmp_path):
    arch, size, layer, text, _stride = ARCHS[key]
    rep = reps[key]
    # An optimisation on a window of the map and a few channels (refused before: "no spatial dimensions").
    p = OptimizeParams(iters=4, size=size, window="centre:2", channels="0-7")
    res, _ = run(RunRequest(method=OPTIMIZE.name, model=arch, random_weights=True, layer=layer, params=p,
                            device="cpu"))
    assert np.isfinite(res.metrics["representation_error"]) and res.images.shape[1:3] == (size, size)
    assert Layout.from_dict(res.record["layer_layout"]).text() == text
    # A decoder, 2 epochs, on the layer's own output (tokens reshaped to the grid, channels last permuted).
    out = tmp_path / f"{key}.pt"
    params = D.TrainParams(epochs=2, batch=4, size=size, crops_per_image=2, width=0.05, preview_every=1)
    trained = [e for e in D.train(rep, layer, photos / "train", out, params, workers=0) if isinstance(e, Result)]
    assert trained and np.isfinite(trained[-1].metrics["held_out_mse"])
    dec, _ = run(RunRequest(method=DECODER.name, model=arch, random_weights=True, layer=layer, decoder=str(out),
                            size=size, device="cpu"))
    assert dec.images.shape[1:3] == (size, size) and np.isfinite(dec.metrics["representation_error"])
    assert Layout.from_dict(dec.record["layer_layout"]).text() == text
    # A neuron probe puts its one value on a patch cell (never on a prefix token) of the right channel.
    image = np.random.default_rng(0).random((size, size, 3)).astype(np.float32)
    probe = next(e for e in P.run(rep, image, layer, str(out), "neuron", size=size, channel=3) if isinstance(e, Result))
    lay = Layout.from_dict(probe.record["layout"])
    assert lay.text() == text and probe.images.shape[0] == 1
    from invgui.core.methods.manipulate import probe_features

    ((_label, f),) = probe_features("neuron", torch.ones(lay.shape), layout=lay, channel=3, value=2.0)
    grid = lay.spatial(f[None])[0]
    h, w = lay.grid
    assert grid[3, h // 2, w // 2] == 2.0 and f.sum() == 2.0
    # The session keeps the request and the result's layout.
    s = Session()
    r = s.add(Run.of(method=OPTIMIZE.name, model=arch, random_weights=True, layer=layer, params=p))
    r.result, r.state = res, "done"
    back = Session.load(s.save(tmp_path / "s.invgui")).runs[0]
    assert back.request == r.request and back.result.record["layer_layout"] == res.record["layer_layout"]


@pytest.mark.slow
def test_a_model_made_for_one_size_runs_at_it_and_says_so():
    module = timm.create_model("vit_tiny_patch16_224", pretrained=False)      # strict 224, no dynamic size
    res, said = run(RunRequest(method=OPTIMIZE.name, model=module, layer="blocks.0",
                               params=OptimizeParams(iters=2, size=96), device="cpu"))
    note = "takes 224×224 inputs only: the run uses 224 px instead of 96"
    assert any(note in m for m in said) and any(note in n for n in res.record["notes"])
    assert res.images.shape[1:3] == (224, 224)


def test_a_module_from_python_is_inverted_on_a_frozen_copy_and_named_by_its_weights():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3))
    module.train()
    req = RunRequest(method=OPTIMIZE.name, model=module, layer="1", params=OptimizeParams(iters=3, size=32),
                     device="cpu")
    assert req.model.startswith("python:torch.nn.modules.container.Sequential@")
    res, _ = run(req)
    assert res.record["representation"] == req.model and np.isfinite(res.metrics["representation_error"])
    assert module.training and all(q.requires_grad for q in module.parameters())   # the caller's module untouched
    with torch.no_grad():
        module[0].weight.add_(1.0)
    assert RunRequest(model=module).model != req.model                          # other weights, another name
    # A session from another process, where the module is not registered, says what is missing.
    with pytest.raises(R.RepresentationError, match=r"lived in Python \(mymodels.Net, state dict 0123456789ab\)"):
        R.get("python:mymodels.Net@0123456789ab")


def test_safetensors_files_and_checkpoint_folders_load_offline_and_mismatches_name_keys(tmp_path):
    from safetensors.torch import save_file

    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10)
    sd = {k: v.contiguous() for k, v in vit.state_dict().items()}
    save_file(sd, tmp_path / "vit.safetensors")
    # A state dict for another head: the error names the first keys that differ.
    with pytest.raises(R.RepresentationError, match=r"head\.(weight|bias)"):
        R.get("timm:vit_tiny_patch16_224", weights=str(tmp_path / "vit.safetensors"))
    # A timm / Hugging Face checkpoint folder: config.json says the architecture, head and preprocessing.
    folder = tmp_path / "vit-folder"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes((tmp_path / "vit.safetensors").read_bytes())
    cfg = {"architecture": "vit_tiny_patch16_224", "num_classes": 10,
           "pretrained_cfg": {"input_size": [3, 96, 96], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}
    (folder / "config.json").write_text(json.dumps(cfg))
    for rep in (R.get(str(folder)), R.get("timm:vit_tiny_patch16_224", weights=str(folder))):
        assert rep.name == "timm:vit_tiny_patch16_224" and rep.input_size == 96 and rep.mean == (0.5, 0.5, 0.5)
        assert all(torch.equal(rep.model.state_dict()[k], v) for k, v in sd.items())
    # A transformers-library checkpoint is not a timm one: said, not mis-loaded.
    (folder / "config.json").write_text(json.dumps({"model_type": "vit", "architectures": ["ViTModel"]}))
    with pytest.raises(R.RepresentationError, match="transformers checkpoint, vit"):
        R.get(str(folder))
    # torchvision architectures take safetensors too; a broken file is a clear error.
    import torchvision

    save_file(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.safetensors")
    assert R.get("torchvision:resnet18", weights=str(tmp_path / "r18.safetensors")).name == "torchvision:resnet18"
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(R.RepresentationError, match="not a readable safetensors file"):
        R.get("torchvision:resnet18", weights=str(tmp_path / "bad.safetensors"))


def test_gui_takes_the_models_invert_takes():
    from invgui.cli import build_parser

    args = build_parser().parse_args(["gui", "--model", "timm:vit_tiny_patch16_224", "--weights", "w.safetensors",
                                      "--random-weights"])
    assert (args.model, args.weights, args.random_weights) == ("timm:vit_tiny_patch16_224", "w.safetensors", True)
