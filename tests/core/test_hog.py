"""HOG / HOGb (UoCTTI): shapes, invariances, gradients, an independent check, and inversion."""

import math

import numpy as np
import pytest
import torch

from invgui.cli import main
from invgui.core import representations as R
from invgui.core.events import Result
from invgui.core.methods.optimize import OptimizeParams, run
from invgui.core.representations.hog import hog


@pytest.mark.parametrize("h,w", [(37, 53), (8, 8), (17, 9), (224, 224)])
@pytest.mark.parametrize("bilinear", [False, True])
def test_output_shape_for_odd_sizes(h, w, bilinear):
    f = hog(torch.rand(2, 3, h, w), bilinear=bilinear)
    assert f.shape == (2, 31, math.ceil(h / 8), math.ceil(w / 8))
    assert torch.isfinite(f).all() and (f >= 0).all()


@pytest.mark.parametrize("bilinear", [False, True])
def test_invariant_to_brightness_scaling(bilinear):
    img = torch.rand(1, 3, 48, 40) * 0.5
    assert torch.allclose(hog(img, bilinear=bilinear), hog(img * 1.8, bilinear=bilinear), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("bilinear", [False, True])
@pytest.mark.numerics
def test_gradcheck_float64(bilinear):
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: hog(v, bilinear=bilinear), (x,), eps=1e-6, atol=1e-4)


@pytest.mark.parametrize("angle_deg,expected_bin", [(0, 0), (100, 5), (180, 9), (40, 2), (260, 13)])
def test_oriented_edge_puts_energy_in_its_bin(angle_deg, expected_bin):
    """A step edge whose gradient points at angle θ (image y down) fills directed bin θ/20° (bin centres)."""
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32) - 23.5
    t = math.radians(angle_deg)
    # A soft (sigmoid) edge: a hard step on the pixel grid gives many gradients at exactly 90° or
    # 270°, a tie between two bins that any tie-break may settle either way.
    img = (1 / (1 + np.exp(-(xx * math.cos(t) + yy * math.sin(t)) / 1.5))).astype(np.float32) * 0.8 + 0.1
    x = torch.from_numpy(np.repeat(img[None, None], 3, axis=1))
    f = hog(x)
    sensitive = f[0, :18].sum((1, 2))
    insensitive = f[0, 18:27].sum((1, 2))
    assert int(sensitive.argmax()) == expected_bin
    assert int(insensitive.argmax()) == expected_bin % 9
    assert sensitive.max() > 3 * np.sort(sensitive.numpy())[-3]     # concentrated, not smeared


def test_registry_layers_and_cli(capsys):
    rep = R.get("hog")
    assert rep.layer_info(None, 100).shape == (31, 13, 13)
    assert main(["layers", "hogb", "--size", "100"]) == 0
    assert "31×13×13" in capsys.readouterr().out
    with pytest.raises(R.RepresentationError, match="single layer"):
        rep.resolve_layer("conv1")


def test_hog_inversion_is_gray_and_hogb_inverts_better(chelsea):
    p = OptimizeParams(iters=80, size=96, preview_every=20)
    errs = {}
    for name in ("hog", "hogb"):
        *_, res = run(R.get(name), chelsea, None, p)
        assert isinstance(res, Result)
        assert np.allclose(res.images[..., 0], res.images[..., 1])
        assert np.allclose(res.images[..., 1], res.images[..., 2])
        assert res.metrics["representation_error"] < 0.7 * res.metrics["start_representation_error"]
        errs[name] = res.metrics["representation_error"]
    assert errs["hogb"] < errs["hog"]
