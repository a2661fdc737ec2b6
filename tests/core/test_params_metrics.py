import argparse

import numpy as np
import pytest
import torch

from invgui.core import metrics
from invgui.core.methods.optimize import OptimizeParams
from invgui.core.params import add_arguments, from_arguments, from_dict, to_dict, validate


def test_dict_roundtrip_and_unknown_keys():
    p = OptimizeParams(iters=7, lr_milestones=(0.5,), reset_momentum=False)
    d = to_dict(p)
    assert d["lr_milestones"] == [0.5]
    assert from_dict(OptimizeParams, d) == p
    with pytest.raises(ValueError, match="unknown parameter"):
        from_dict(OptimizeParams, {"nope": 1})


def test_cli_flags_override_one_by_one():
    ap = argparse.ArgumentParser()
    add_arguments(ap, OptimizeParams)
    args = ap.parse_args(["--iters", "9", "--lr-milestones", "0.1,0.2", "--no-reset-momentum"])
    p = from_arguments(OptimizeParams, args, OptimizeParams())
    assert (p.iters, p.lr_milestones, p.reset_momentum) == (9, (0.1, 0.2), False)
    assert p.tv_weight == OptimizeParams().tv_weight


def test_validate_reports_ranges():
    assert validate(OptimizeParams()) == []
    assert any("Momentum" in m for m in validate(OptimizeParams(momentum=2.0)))


def test_metrics():
    phi0 = torch.randn(1, 8, 3, 3)
    assert float(metrics.representation_error(phi0, phi0)) == 0.0
    assert float(metrics.representation_error(2 * phi0, phi0)) == pytest.approx(1.0)
    a = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.psnr(np.clip(a + 0.1, 0, 1), a) < 25
    from skimage.metrics import peak_signal_noise_ratio

    b = np.clip(a + np.random.default_rng(1).normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    assert metrics.psnr(b, a) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), rel=1e-9)
    assert metrics.psnr(a, a) == float("inf")


def test_a_preset_for_one_kind_of_representation_is_swapped_for_its_counterpart():
    from invgui.core.methods.optimize import preset_for

    assert preset_for("mv2015-shallow", handcrafted=False) == "mv2015"
    assert preset_for("mv2015", handcrafted=True) == "mv2015-shallow"
    assert preset_for("fast", handcrafted=True) == "fast" and preset_for("mv2016", handcrafted=False) == "mv2016"


def test_default_sweep_layers_are_spatial_stages_from_shallow_to_deep(alexnet_random):
    from invgui.core import representations as R
    from invgui.core.compare import default_sweep_layers

    assert default_sweep_layers(alexnet_random, 224) == ["features.0", "features.3", "features.8", "features.10"]
    assert default_sweep_layers(R.get("hog"), 96) == ["hog"]


def test_a_single_layer_representation_is_named_once():
    """Issue 27 §9: titles read "hog hog"."""
    from invgui.core.results import where

    assert where("hog", "hog") == "hog" and where("efficientnet_lite0", "blocks.3") == "efficientnet_lite0 blocks.3"
