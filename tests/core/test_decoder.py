"""The decoder method: architectures, training, checkpoints, reconstruction, probes, CLI."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from invgui.cli import main
from invgui.core import representations as R
from invgui.core.events import Result, Status, Step
from invgui.core.images import load_image
from invgui.core.methods import decoder as D
from invgui.core.methods import manipulate as M
from invgui.core.methods import probe as P
from invgui.core.methods.decoder import nets as N

TINY = D.TrainParams(epochs=1, batch=4, size=32, crops_per_image=2, width=0.05, preview_every=1)


def train_all(*args, **kw):
    events = list(D.train(*args, **kw))
    return events, events[-1]


# -- architectures --------------------------------------------------------------------------------

def test_hog_network_is_table_3_at_width_1():
    net = N.build("two-stream", (31, 32, 32), 8, 1.0)
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [m.out_channels for m in convs] == [256, 512, 1024, 512, 256, 128, 128, 128, 256, 128, 64, 32, 3]
    assert [m.stride[0] for m in convs[:3]] == [2, 2, 2]
    acts = [m for m in net.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert len(acts) == len(convs) - 1 and all(a.negative_slope == 0.2 for a in acts)
    assert net(torch.rand(1, 31, 32, 32)).shape == (1, 3, 256, 256)


@pytest.mark.parametrize("kind,shape,stride,size", [
    ("two-stream", (58, 16, 16), 16, 256),          # LBP, Table 5
    ("sift", (133, 16, 16), 4, 64),                 # sparse SIFT, Table 4
    ("conv", (256, 6, 6), 32, 192),                 # AlexNet conv5, Table 6
    ("fc", (1000,), 1, 128),                        # AlexNet fc8, Table 7
    ("two-stream", (31, 9, 7), 8, 70),              # odd sizes are fitted
    ("conv", (80, 7, 7), 16, 100),                  # a non-power-of-two output is resized
])
def test_every_architecture_outputs_the_image_size(kind, shape, stride, size):
    net = N.build(kind, shape, stride, 0.1)
    assert net(torch.rand(2, *shape), (size, size)).shape == (2, 3, size, size)


def test_width_multiplier_scales_the_parameters():
    small, big = (N.count_parameters(N.build("two-stream", (31, 16, 16), 8, w)) for w in (0.25, 1.0))
    assert 10 < big / small < 20


# -- training, checkpoints, reconstruction -------------------------------------------------------

def test_train_hog_one_epoch_then_reconstruct_in_one_call(photos, tmp_path):
    out = tmp_path / "hog.pt"
    events, res = train_all(R.get("hog"), None, photos / "train", out, TINY)
    assert any(isinstance(e, Status) and "skipped 1 file: 1 unreadable" in e.message for e in events)
    steps = [e for e in events if isinstance(e, Step)]
    assert steps and all(math.isfinite(s.losses["train"]) for s in steps)
    assert "held_out" in steps[-1].losses and steps[-1].preview is not None
    assert isinstance(res, Result) and out.exists() and res.metrics["skipped"] == 1
    loaded = D.load_checkpoint(out)
    meta = loaded.meta
    assert meta["representation"] == "hog" and meta["layer"] == "hog" and meta["architecture"] == "two-stream"
    assert meta["epochs"] == 1 and meta["input_size"] == 32 and meta["training"]["images"] == 3
    assert meta["training"]["held_out_images"] == 1 and meta["held_out_mse"] > 0
    assert {"torch", "invgui"} <= set(meta["versions"]) and meta["representation_params"]["cell"] == 8
    *_, rec = D.run(R.get("hog"), load_image("sample:chelsea"), None, out)
    assert rec.images.shape == (1, 32, 32, 3) and rec.images.min() >= 0 and rec.images.max() <= 1
    assert rec.record["method"] == "decoder" and math.isfinite(rec.metrics["representation_error"])
    assert rec.images[0].std() > 0           # colour output, not a constant
    # A fully convolutional decoder also reconstructs at another size.
    *_, big = D.run(R.get("hog"), load_image("sample:chelsea"), None, out, size=64)
    assert big.images.shape == (1, 64, 64, 3)


def test_mismatched_checkpoint_says_what_does_not_match(photos, tmp_path):
    out = tmp_path / "hog.pt"
    train_all(R.get("hog"), None, photos / "train", out, TINY)
    with pytest.raises(D.DecoderError, match=r"representation 'hog' \(here 'hogb'\)"):
        list(D.run(R.get("hogb"), load_image("sample:chelsea"), None, out))
    with pytest.raises(D.DecoderError, match=r"representation parameters .*'cell': 8.*\(here .*'cell': 4"):
        list(D.run(R.get("hog", params={"cell": 4}), load_image("sample:chelsea"), None, out))
    with pytest.raises(R.RepresentationError):
        list(D.run(R.get("hog"), load_image("sample:chelsea"), "conv1", out))


def test_untrusted_or_wrong_files_are_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"invgui_decoder": 1, "x": Evil()}))
    with pytest.raises(D.DecoderError, match="refused.*could run code"):
        D.load_checkpoint(bad)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(D.DecoderError, match="not a readable decoder"):
        D.load_checkpoint(tmp_path / "junk.pt")
    other = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(D.DecoderError, match="not an invgui decoder"):
        D.load_checkpoint(other)
    with pytest.raises(D.DecoderError, match="no such decoder"):
        D.load_checkpoint(tmp_path / "missing.pt")


def test_lbp_and_sparse_sift_invert_through_decoders(photos, tmp_path):
    for name in ("lbp", "sift"):
        out = tmp_path / f"{name}.pt"
        _, res = train_all(R.get(name), None, photos / "train", out, TINY, held_out_data=photos / "held")
        assert res.record["training"]["held_out_images"] == 2 and "held_out_normalised_error" in res.metrics
        *_, rec = D.run(R.get(name), load_image("sample:coffee"), None, out)
        assert rec.images.shape == (1, 32, 32, 3)


def test_resume_continues_and_stop_keeps_a_checkpoint(photos, tmp_path):
    out = tmp_path / "hog.pt"
    train_all(R.get("hog"), None, photos / "train", out, TINY)
    events, res = train_all(R.get("hog"), None, photos / "train", out,
                            dataclasses.replace(TINY, epochs=2), resume=out)
    assert any(isinstance(e, Status) and "resuming" in e.message for e in events)
    assert D.load_checkpoint(out).epoch == 2
    stop_out = tmp_path / "stopped.pt"
    calls = iter(range(100))
    _, res = train_all(R.get("hog"), None, photos / "train", stop_out,
                       dataclasses.replace(TINY, epochs=5), should_stop=lambda: next(calls) >= 1)
    assert res.stopped and stop_out.exists() and "stopped by the user" in res.message


def test_autoencoder_fine_tunes_the_encoder(photos, tmp_path):
    rep = R.get("alexnet", random_weights=True)
    before = {k: v.clone() for k, v in rep.model.state_dict().items()}
    out = tmp_path / "ae.pt"
    p = dataclasses.replace(TINY, size=64, autoencoder=True)
    train_all(rep, "conv1", photos / "train", out, p)
    loaded = D.load_checkpoint(out)
    assert loaded.meta["autoencoder"] and loaded.encoder is not None
    changed = any(not torch.equal(before[k], loaded.encoder[k]) for k in before if k.startswith("features.0"))
    assert changed
    assert not any(q.requires_grad for q in rep.model.parameters())     # frozen again afterwards
    fresh = R.get("alexnet", random_weights=True)
    *_, rec = D.run(fresh, load_image("sample:coffee"), "conv1", out)       # loads the fine-tuned encoder
    assert torch.equal(fresh.model.state_dict()["features.0.weight"], loaded.encoder["features.0.weight"])
    with pytest.raises(R.RepresentationError, match="autoencoder mode needs a CNN"):
        list(D.train(R.get("hog"), None, photos / "train", tmp_path / "x.pt", p))


def test_folder_errors(tmp_path):
    with pytest.raises(Exception, match="no such folder"):
        list(D.train(R.get("hog"), None, tmp_path / "nope", tmp_path / "x.pt", TINY))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "junk.png").write_bytes(b"junk")
    with pytest.raises(Exception, match="no readable training images"):
        list(D.train(R.get("hog"), None, tmp_path / "empty", tmp_path / "x.pt", TINY))


def test_lr_decays_towards_the_end():
    p = D.TrainParams(decay_from=0.5, final_lr=0.1)
    assert D.lr_factor(p, 0.2) == 1.0 and D.lr_factor(p, 1.0) == pytest.approx(0.1)
    assert 0.1 < D.lr_factor(p, 0.75) < 1.0


# -- probes -------------------------------------------------------------------------------------

def test_binarise_and_dropout_preserve_the_norm():
    phi = torch.relu(torch.randn(32, 4, 4, generator=torch.Generator().manual_seed(0)))
    b = M.binarise(phi)
    assert b.norm() == pytest.approx(float(phi.norm()), rel=1e-5)
    assert torch.allclose(b[b != 0], b.max().expand(int((b != 0).sum())))       # one magnitude
    assert torch.equal(b != 0, phi != 0)
    for mode in ("random", "smallest"):
        d = M.dropout(phi, 0.5, mode, seed=1)
        assert d.norm() == pytest.approx(float(phi.norm()), rel=1e-5)
    small = M.dropout(phi, 0.5, "smallest")
    nz = phi[phi != 0]
    assert int((small != 0).sum()) == len(nz) - round(0.5 * len(nz))
    kept = small[small != 0] * (phi.norm() / small.norm())          # undo the rescaling
    assert float(kept.min()) >= float(nz.sort().values[round(0.5 * len(nz)) - 1]) - 1e-6   # the larger half kept
    both = M.binarise(M.dropout(phi, 0.5, "random"))
    assert both.norm() == pytest.approx(float(phi.norm()), rel=1e-5)
    signed = torch.randn(50)
    assert M.binarise(signed).norm() == pytest.approx(float(signed.norm()), rel=1e-5)
    assert torch.equal(torch.sign(M.binarise(signed)), torch.sign(signed))


def test_top_k_interpolation_and_neuron():
    phi = torch.arange(20.0).view(5, 2, 2)
    keep, zero = M.top_k(phi, 5, True), M.top_k(phi, 5, False)
    assert sorted(keep[keep != 0].tolist()) == [15, 16, 17, 18, 19] and zero.max() == 14
    a, b = torch.rand(3, 4, 4), torch.rand(3, 4, 4)
    path = M.interpolate(a, b, 5)
    assert len(path) == 5 and torch.equal(path[0], a) and torch.allclose(path[-1], b)
    assert torch.allclose(path[2], (a + b) / 2)
    one = M.neuron((3, 4, 4), 1, (2, 3), 7.0)
    assert one.sum() == 7 and one[1, 2, 3] == 7
    with pytest.raises(ValueError, match="out of range"):
        M.neuron((3, 4, 4), 5)


def test_random_features_match_the_sparsity_of_real_ones():
    g = torch.Generator().manual_seed(0)
    real = torch.relu(torch.randn(200, 8, 3, 3, generator=g) - 0.5)
    stats = M.FeatureStats.estimate(real)
    hist = stats.sample_histogram(300, alpha=1.0, seed=1)
    assert hist.shape == (300, 8, 3, 3)
    assert (hist == 0).float().mean() == pytest.approx(stats.zeros, abs=0.02)
    per_dim_real = (real == 0).float().mean(0)
    per_dim_fake = (hist == 0).float().mean(0)
    assert (per_dim_real - per_dim_fake).abs().max() < 0.12
    assert hist.max() <= real.max() + 1e-6 and (hist >= 0).all()
    assert torch.allclose(stats.sample_histogram(3, alpha=2.0, seed=1), 2 * stats.sample_histogram(3, 1.0, seed=1))
    gauss = stats.sample_gaussian(300, alpha=1.0, seed=2)
    assert (gauss == 0).float().mean() == pytest.approx(stats.zeros, abs=0.03)
    assert float(gauss.mean()) == pytest.approx(stats.mean, rel=0.1)


def test_probe_runner_builds_a_strip_and_feature_files(photos, tmp_path):
    out = tmp_path / "hog.pt"
    train_all(R.get("hog"), None, photos / "train", out, TINY)
    img = load_image("sample:chelsea")
    *_, res = P.run(R.get("hog"), img, None, out, "interpolate", other=load_image("sample:coffee"), steps=4,
                    save_features=tmp_path / "feats")
    assert res.images.shape == (4, 32, 32, 3) and res.record["labels"][0] == "t = 0.00"
    assert len(res.record["feature_files"]) == 4
    from invgui.core import features_io

    ff = features_io.load(res.record["feature_files"][0])
    assert ff.meta["representation"] == "hog" and ff.features.shape == (31, 4, 4)
    *_, res = P.run(R.get("hog"), img, None, out, "binarise",
                    optimize_params=D_opt_params())
    assert res.images.shape == (4, 32, 32, 3) and res.record["rows"] == 2
    assert res.record["labels"][2].startswith("optimisation: ")


def D_opt_params():
    from invgui.core.methods.optimize import OptimizeParams

    return OptimizeParams(iters=2, preview_every=1)


# -- CLI ------------------------------------------------------------------------------------------

def test_cli_train_invert_probe(photos, tmp_path, capsys):
    ckpt = tmp_path / "hog.pt"
    assert main(["train-decoder", "--model", "hog", "--data", str(photos / "train"), "--out", str(ckpt),
                 "--epochs", "1", "--batch", "4", "--size", "32", "--crops-per-image", "2", "--width", "0.05",
                 "-q"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "(1 unreadable skipped)" in out
    png = tmp_path / "r.png"
    assert main(["invert", "sample:coffee", "--model", "hog", "--method", "decoder", "--decoder", str(ckpt),
                 "--out", str(png)]) == 0
    assert "one forward pass" in capsys.readouterr().out
    rec = json.loads(png.with_suffix(".json").read_text())
    assert rec["method"] == "decoder" and rec["decoder"] == str(ckpt) and (tmp_path / "r-features.png").exists()
    assert main(["invert", "sample:coffee", "--model", "hogb", "--method", "decoder", "--decoder", str(ckpt),
                 "--out", str(png)]) == 2
    assert "trained for representation 'hog' (here 'hogb')" in capsys.readouterr().err
    strip = tmp_path / "s.png"
    assert main(["probe", "sample:chelsea", "--model", "hog", "--decoder", str(ckpt), "--probe", "zero-top-k",
                 "--out", str(strip), "--save-features", str(tmp_path / "f")]) == 0
    assert strip.exists() and json.loads(strip.with_suffix(".json").read_text())["probe"] == "zero-top-k"
    feats = sorted((tmp_path / "f").glob("*.pt"))
    assert len(feats) == 2
    capsys.readouterr()
    # The optimisation method takes the manipulated features as its target.
    assert main(["invert", "--model", "hog", "--target-features", str(feats[1]), "--iters", "2", "-q",
                 "--out", str(tmp_path / "o.png")]) == 0
    assert main(["probe", "--model", "hog", "--decoder", str(ckpt), "--probe", "random-histogram",
                 "--out", str(strip)]) == 2
    assert "statistics" in capsys.readouterr().err
    # Fine-tune it with the feature and adversarial terms (--init), the critic saved for --resume.
    tuned = tmp_path / "tuned.pt"
    assert main(["train-decoder", "--model", "hog", "--data", str(photos / "train"), "--out", str(tuned),
                 "--init", str(ckpt), "--epochs", "1", "--batch", "4", "--crops-per-image", "2", "-q",
                 "--feature-weight", "0.1", "--adversarial-weight", "0.01"]) == 0
    params = D.load_checkpoint(tuned).meta["training"]["params"]
    assert params["adversarial_weight"] == 0.01 and params["feature_weight"] == 0.1
    assert D.load_checkpoint(tuned).discriminator is not None


def test_cli_decoder_for_a_model_without_one(capsys):
    assert main(["invert", "--model", "dsift", "--method", "decoder"]) == 2
    assert "train-decoder" in capsys.readouterr().err


def test_large_collections_are_read_lazily(photos, tmp_path, monkeypatch):
    monkeypatch.setattr(D.ImageSet, "PRELOAD", 2)                 # pretend the folder is ImageNet-sized
    out = tmp_path / "lazy.pt"
    _, res = train_all(R.get("hog"), None, photos / "train", out, TINY, held_out_data=photos / "held")
    assert out.exists() and res.metrics["training_images"] == 5   # listed lazily, the broken file included
    assert res.metrics["skipped"] >= 1 and len(res.images) == 2      # met the broken file, went on


@pytest.mark.numerics
def test_several_images_in_one_batch(tiny_hog_decoder, tmp_path, capsys):
    imgs = [load_image(f"sample:{n}") for n in ("chelsea", "coffee", "rocket")]
    *_, res = D.run(R.get("hog"), imgs, None, tiny_hog_decoder)
    assert res.images.shape == (3, 32, 32, 3) and len(res.metrics["psnr_per_image"]) == 3
    *_, one = D.run(R.get("hog"), imgs[1], None, tiny_hog_decoder)
    assert np.allclose(one.images[0], res.images[1], atol=1e-5)      # batching changes nothing
    assert main(["invert", "sample:chelsea", "sample:coffee", "--model", "hog", "--method", "decoder",
                 "--decoder", str(tiny_hog_decoder), "--out", str(tmp_path / "batch")]) == 0
    assert "2 images in one forward pass" in capsys.readouterr().out
    assert len(list((tmp_path / "batch").glob("*_decoder.png"))) == 2
    assert main(["invert", "sample:chelsea", "sample:coffee", "--model", "hog", "--method", "decoder",
                 "--decoder", str(tiny_hog_decoder), "--out", str(tmp_path / "b.png")]) == 2
    assert "--out is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(D.shipped_decoders()))
def test_every_shipped_decoder_reconstructs_by_its_name(name, tmp_path, capsys):
    meta = D.load_checkpoint(D.shipped_decoders()[name]).meta
    model, layer = meta["representation"], meta["layer"]
    assert main(["invert", "sample:coffee", "--model", model, "--layer", layer, "--method", "decoder",
                 "--decoder", name, "-q", "--out", str(tmp_path / "r.png")]) == 0
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["decoder"].endswith(f"{name}.pt") and math.isfinite(record["metrics"]["psnr"])
    capsys.readouterr()
    assert main(["layers", model]) == 0
    assert f"{name:<32} layer {layer}, {D.training_loss(meta)} loss" in capsys.readouterr().out
    # Issue 40 §3: learned from the real photos, and what the decoder card shows is recorded.
    training = meta["training"]
    assert training["dataset"].startswith("160 real photos") and training["held_out_images"] == 40
    assert math.isfinite(meta["held_out_normalised_error"]) and meta["training_seconds"] > 0


def test_the_shipped_feature_adversarial_decoder_is_what_the_readme_says():
    meta = D.load_checkpoint(D.shipped_decoders()["hog-adversarial"]).meta
    params = meta["training"]["params"]
    assert D.training_loss(meta) == "pixel+feature+adversarial"
    assert params["comparator"] == "efficientnet_lite0:blocks.1" and params["adversarial_weight"] == 0.001
    assert meta["training"]["init"].endswith("hog.pt")          # fine-tuned from the pixel-loss decoder
    assert D.find_shipped("hog", "hog").name == "hog.pt"         # which stays the default


def test_a_decoder_is_measured_at_the_evaluation_size(tiny_hog_decoder):
    """Issue 27 §5: a decoder working at 32 px, compared with the original at 64 px, is upsampled
    (paper 001 compares at the input resolution); without eval_size it is measured at its own."""
    from invgui.core import metrics
    from invgui.core.images import load_image, resize_center_crop
    from invgui.core.request import RunRequest, execute, final_result

    img = load_image("sample:coffee")
    res = final_result(execute(RunRequest(method="decoder", model="hog", images=("sample:coffee",),
                                          decoder=str(tiny_hog_decoder), device="cpu", eval_size=64)))
    assert (res.record["input_size"], res.record["eval_size"]) == (32, 64) and res.images.shape[1] == 32
    up = resize_center_crop(res.images[0], 64)
    assert res.metrics["psnr"] == pytest.approx(metrics.psnr(up, resize_center_crop(img, 64)), abs=1e-6)
    own = final_result(execute(RunRequest(method="decoder", model="hog", images=("sample:coffee",),
                                          decoder=str(tiny_hog_decoder), device="cpu")))
    assert own.record["eval_size"] == 32
    assert own.metrics["psnr"] == pytest.approx(metrics.psnr(own.images[0], resize_center_crop(img, 32)), abs=1e-6)
