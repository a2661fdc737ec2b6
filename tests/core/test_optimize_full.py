"""The papers' full method: presets, restarts, jitter, subsets, other objectives, feature files."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from invgui.cli import main
from invgui.core import features_io, metrics
from invgui.core.events import Result
from invgui.core.methods.optimize import PRESETS, FeatureObjective, OptimizeParams, resolve, run
from invgui.core.subsets import SubsetError, mask, parse_channels, parse_window

SMALL = OptimizeParams(iters=12, size=96, preview_every=4)


def result_of(gen):
    *_, last = gen
    assert isinstance(last, Result)
    return last


def test_presets_carry_the_papers_settings():
    a, b, f = PRESETS.get("mv2015"), PRESETS.get("mv2016"), PRESETS.get("fast")
    assert (a.iters, a.lr, a.momentum, a.lr_milestones, a.reset_momentum, a.alpha, a.beta, a.restarts) == \
        (400, 0.004, 0.9, (0.25, 0.75), True, 6.0, 2.0, 4)
    assert a.tv_weight < 0                                   # by depth, from the layer tree
    assert (b.iters, b.stage2_iters, b.stage2_lr, b.optimizer, b.sigma, b.clamp, b.jitter) == \
        (300, 50, 0.1, "rmsprop", 80.0, 2.0, -1)
    assert b.alpha_weight == 1.0 and b.tv_weight == pytest.approx(6.5 ** 2) and b.feature_weight == 100
    assert f.optimizer == "adam"


def test_layer_dependent_values_come_from_the_tree(effnet, alexnet_random):
    p = PRESETS.get("mv2016")
    early, deep = effnet.layer_info("blocks.1"), effnet.layer_info("blocks.5")
    assert resolve(p, early)["jitter"] == max(round(early.stride / 4), 1) == 1
    assert resolve(p, deep)["jitter"] == 8                   # stride 32
    tv = [resolve(PRESETS.get("mv2015"), alexnet_random.layer_info(n))["tv_weight"] for n in ("conv1", "conv4", "fc7")]
    assert tv == sorted(tv) and tv[0] < tv[1] < tv[2]


def test_preset_runs_record_every_value_used(tmp_path):
    out = tmp_path / "m.png"
    assert main(["invert", "--preset", "mv2016", "--iters", "3", "--stage2-iters", "2", "--size", "64",
                 "--layer", "blocks.3", "-q", "--out", str(out)]) == 0
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["preset"] == "mv2016"
    assert rec["params"]["optimizer"] == "rmsprop" and rec["params"]["clamp"] == 2.0
    assert rec["resolved"]["jitter"] == max(round(rec["resolved"]["stride"] / 4), 1)
    assert len(rec["losses"]["total"]) == 5


def test_restarts_are_one_batch_with_a_deviation_map(effnet, chelsea, tmp_path):
    res = result_of(run(effnet, chelsea, "blocks.2", dataclasses.replace(SMALL, restarts=3)))
    assert res.images.shape == (3, 96, 96, 3)
    assert not np.array_equal(res.images[0], res.images[1])
    assert res.deviation.shape == (96, 96) and res.deviation.max() > 0
    assert len(res.metrics["representation_error_per_restart"]) == 3
    assert res.metrics["representation_error_std"] >= 0
    out = tmp_path / "r.png"
    assert main(["invert", "--restarts", "4", "--iters", "3", "--size", "64", "-q", "--out", str(out)]) == 0
    names = sorted(f.name for f in tmp_path.iterdir())
    assert names == ["r-1.png", "r-2.png", "r-3.png", "r-deviation.png", "r-losses.csv", "r.json", "r.png"]
    rec = json.loads(out.with_suffix(".json").read_text())
    assert len(rec["images"]) == 4 and rec["deviation_max"] > 0


@pytest.mark.numerics
def test_first_restart_matches_a_single_run(effnet, chelsea):
    one = result_of(run(effnet, chelsea, "blocks.1", SMALL))
    two = result_of(run(effnet, chelsea, "blocks.1", dataclasses.replace(SMALL, restarts=2)))
    np.testing.assert_allclose(one.images[0], two.images[0], atol=2e-3)


def test_subset_gradient_is_zero_outside_window_and_channels():
    phi0 = torch.randn(1, 8, 6, 6)
    for channels, window in (("", "centre:2"), ("1,3-4", ""), ("second-half", "1,1,4,3")):
        obj = FeatureObjective("invert", phi0, channels, window)
        phi = torch.randn(2, 8, 6, 6, requires_grad=True)
        obj(phi).sum().backward()
        m = mask((8, 6, 6), channels, window).bool()
        assert (phi.grad[:, ~m] == 0).all()
        assert (phi.grad[:, m] != 0).all()


def test_subset_inversion_changes_only_the_chosen_neurons_loss(effnet, chelsea):
    res = result_of(run(effnet, chelsea, "blocks.3", dataclasses.replace(SMALL, channels="0-9", window="centre:2")))
    assert res.history["feature"][-1] < res.history["feature"][0]


def test_subset_specs():
    assert parse_channels("first-half", 10) == [0, 1, 2, 3, 4]
    assert parse_channels("0-2,7", 10) == [0, 1, 2, 7]
    assert parse_window("centre:2", 6, 6) == (2, 2, 4, 4)
    assert parse_window("", 4, 5) == (0, 0, 5, 4)
    with pytest.raises(SubsetError, match="outside 0…9"):
        parse_channels("12", 10)
    with pytest.raises(SubsetError, match="does not fit"):
        parse_window("0,0,9,9", 6, 6)
    with pytest.raises(SubsetError, match="no spatial"):
        mask((10,), "", "centre:1")


def test_activation_maximisation_beats_the_start_noise(effnet, chelsea):
    p = dataclasses.replace(SMALL, objective="maximise", channels="5", iters=30, feature_weight=100.0)
    res = result_of(run(effnet, chelsea, "blocks.2", p))
    m = res.metrics
    assert m["activation"] > 0 and m["activation"] - m["start_activation"] > 2 * abs(m["start_activation"])
    neuron = result_of(run(effnet, chelsea, "blocks.2", dataclasses.replace(p, window="centre:1")))
    assert neuron.metrics["activation"] > 0
    start = neuron.metrics["start_activation"]
    assert neuron.metrics["activation"] - start > 2 * abs(start)


def test_caricature_amplifies_the_targets_activations(effnet, chelsea):
    p = dataclasses.replace(SMALL, objective="caricature", iters=30)
    res = result_of(run(effnet, chelsea, "blocks.2", p))
    projection = [-v for v in res.history["feature"]]         # ⟨Φ0, Φ(x)⟩ / ‖Φ0‖²
    assert abs(projection[0]) < 0.1                            # noise is nearly orthogonal to Φ0
    assert projection[-1] > 0.5 and projection[-1] > projection[0] + 0.5


def test_jitter_translates_and_changes_the_result(effnet, chelsea):
    a = result_of(run(effnet, chelsea, "blocks.2", SMALL))
    b = result_of(run(effnet, chelsea, "blocks.2", dataclasses.replace(SMALL, jitter=3)))
    assert b.record["resolved"]["jitter"] == 3
    assert not np.array_equal(a.images, b.images)


def test_clamp_bounds_the_colour_norm(effnet, chelsea):
    p = dataclasses.replace(SMALL, clamp=1.0, init_scale=3.0, iters=3)
    res = result_of(run(effnet, chelsea, "blocks.1", p))
    u = (res.images - 0.5) * 255 / p.sigma                     # efficientnet's mean is 0.5
    assert np.linalg.norm(u, axis=-1).max() <= 1.0 + 1e-3


def test_feature_files_roundtrip_and_reproduce_inversion(effnet, chelsea, tmp_path):
    ff = features_io.compute(effnet, chelsea, "blocks.2", 96)
    for name in ("f.pt", "f.npy"):
        features_io.save(ff, tmp_path / name)
        back = features_io.load(tmp_path / name)
        assert torch.equal(back.features, ff.features)
    assert features_io.load(tmp_path / "f.pt").meta["layer"] == "blocks.2"
    from_image = result_of(run(effnet, chelsea, "blocks.2", SMALL))
    from_feats = result_of(run(effnet, None, "blocks.2", SMALL, target_features=ff.features))
    np.testing.assert_array_equal(from_image.images, from_feats.images)
    assert "psnr" not in from_feats.metrics
    with pytest.raises(features_io.FeatureFileError, match="layer blocks.2, not blocks.3"):
        features_io.check(ff, effnet, "blocks.3", (80, 6, 6), "f.pt")


def test_cli_features_then_invert_from_features(tmp_path, capsys):
    f = tmp_path / "chelsea.pt"
    assert main(["features", "sample:chelsea", "--layer", "blocks.1", "--size", "64", "--out", str(f)]) == 0
    out = tmp_path / "r.png"
    assert main(["invert", "--target-features", str(f), "--iters", "3", "-q", "--out", str(out)]) == 0
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["target"] == "features" and rec["layer"] == "blocks.1" and rec["input_size"] == 64
    assert main(["invert", "--target-features", str(f), "--layer", "blocks.2", "-q"]) == 2
    assert "not blocks.2" in capsys.readouterr().err
    # --fit: the features of the whole image, padded to a square, and the file says so (issue 27 §8).
    fit = tmp_path / "chelsea-fit.pt"
    assert main(["features", "sample:chelsea", "--layer", "blocks.1", "--size", "64", "--fit", "--out", str(fit)]) == 0
    a, b = features_io.load(f), features_io.load(fit)
    assert (a.meta["framing"], b.meta["framing"]) == ("crop", "fit") and a.features.shape == b.features.shape
    assert not torch.allclose(a.features, b.features)


def test_normalised_reconstruction_error_with_an_eval_set(tmp_path):
    a, b = np.zeros((4, 4, 3), np.float32), np.ones((4, 4, 3), np.float32)
    assert metrics.mean_pairwise_distance([a, b, a]) == pytest.approx(np.sqrt(48) * 2 / 3)
    assert metrics.normalised_reconstruction_error(b, a, np.sqrt(48)) == pytest.approx(1.0)
    out = tmp_path / "r.png"
    assert main(["invert", "--iters", "2", "--size", "64", "--eval-set", "samples", "-q", "--out", str(out)]) == 0
    m = json.loads(out.with_suffix(".json").read_text())["metrics"]
    assert 0 < m["normalised_reconstruction_error"] < 2 and m["eval_distance"] > 0


def test_exploding_regulariser_is_divergence(effnet, chelsea):
    p = dataclasses.replace(SMALL, optimizer="adam", lr=8.0, alpha_weight=1.0, iters=40, preview_every=1)
    res = result_of(run(effnet, chelsea, "blocks.1", p))
    assert res.stopped and "diverged" in res.message and "lower the learning rate" in res.message
    assert np.isfinite(res.images).all()


@pytest.mark.numerics
def test_channels_last_gives_the_same_reconstruction(chelsea):
    from invgui.core import representations as R

    rep = R.get("alexnet", random_weights=True)
    p = dataclasses.replace(SMALL, iters=4, size=96)
    a = result_of(run(rep, chelsea, "conv2", p))
    b = result_of(run(rep, chelsea, "conv2", dataclasses.replace(p, channels_last=True)))
    np.testing.assert_allclose(a.images, b.images, atol=2e-3)
    assert rep.model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
