"""Dense SIFT, LBP, sparse SIFT, the representations' own parameters and their pictures."""

import json
import math

import numpy as np
import pytest
import torch

from invgui.cli import main
from invgui.core import representations as R
from invgui.core.events import Result
from invgui.core.methods.optimize import PRESETS, OptimizeParams, lr_at, run
from invgui.core.representations import lbp as L
from invgui.core.representations.dsift import DSIFTParams
from invgui.core.representations.hog import hog_glyphs
from invgui.core.representations.sift import CHANNELS, DESCRIPTOR, SIFTParams


def edge_image(angle_deg: float, size: int = 64) -> torch.Tensor:
    """A step edge whose gradient points at ``angle_deg`` (x right, y down), as a 1×3×H×W batch."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) - (size - 1) / 2
    t = math.radians(angle_deg)
    img = ((xx * math.cos(t) + yy * math.sin(t)) > 0).astype(np.float32) * 0.8 + 0.1
    return torch.from_numpy(np.repeat(img[None, None], 3, axis=1))


def blobs(size: int = 96, seed: int = 0) -> torch.Tensor:
    """Gaussian blobs of several sizes on gray: plenty of SIFT keypoints."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.full((size, size), 0.5, np.float32)
    for _ in range(25):
        cy, cx = rng.uniform(8, size - 8, 2)
        s = rng.uniform(1.5, 5)
        img += rng.choice([-0.4, 0.4]) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return torch.from_numpy(np.repeat(np.clip(img, 0, 1)[None, None], 3, axis=1))


# -- dense SIFT ---------------------------------------------------------------------------------

@pytest.mark.parametrize("h,w", [(37, 53), (24, 24), (101, 64)])
def test_dsift_output_shape_matches_the_layer_tree(h, w):
    rep = R.get("dsift")
    f = rep.features(torch.rand(2, 3, h, w), "dsift")
    side = lambda n: (n + 1 - 3 * 8 - 1) // 4 + 1          # noqa: E731  (bin 8 even: e = 1; step 4)
    assert f.shape == (2, 128, side(h), side(w))
    assert rep.layer_info(None, h).shape == (128, side(h), side(h))
    norms = f.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-3)     # unit descriptors


def test_dsift_too_small_input_is_a_clear_error():
    rep = R.get("dsift")
    info = rep.layer_info(None, 16)
    assert not info.fits and "at least 24×24" in info.error
    with pytest.raises(R.RepresentationError, match="at least 24×24"):
        rep.features(torch.rand(1, 3, 16, 16), "dsift")


def test_dsift_params_change_the_grid():
    rep = R.get("dsift", params={"bin_size": 4, "step": 2, "orientations": 4, "spatial_bins": 2})
    f = rep.features(torch.rand(1, 3, 32, 32), "dsift")
    assert f.shape == (1, 2 * 2 * 4, (32 + 1 - 4 - 1) // 2 + 1, (32 + 1 - 4 - 1) // 2 + 1)


@pytest.mark.parametrize("angle,expected_bin", [(0, 0), (90, 2), (180, 4), (270, 6), (45, 1)])
def test_dsift_oriented_edge_lands_in_its_angle_bin(angle, expected_bin):
    f = R.get("dsift").features(edge_image(angle), "dsift")[0]
    per_angle = f.reshape(8, 16, *f.shape[1:]).sum((1, 2, 3))   # kornia's angle-major layout
    assert int(per_angle.argmax()) == expected_bin
    assert per_angle.max() > 3 * torch.sort(per_angle).values[-2]


@pytest.mark.numerics
def test_dsift_brightness_invariance_and_gradcheck():
    rep = R.get("dsift", params=DSIFTParams(bin_size=3, step=2))
    x = torch.rand(1, 3, 13, 13) * 0.5
    assert torch.allclose(rep.features(x, "dsift"), rep.features(x * 1.8, "dsift"), atol=1e-4)
    xd = torch.rand(1, 3, 12, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: rep.features(v, "dsift"), (xd,), eps=1e-6, atol=1e-4)


def test_dsift_inversion_lowers_the_error(chelsea):
    *_, res = run(R.get("dsift"), chelsea, None, OptimizeParams(iters=40, size=64, preview_every=20))
    assert isinstance(res, Result)
    assert res.metrics["representation_error"] < 0.7 * res.metrics["start_representation_error"]
    assert np.allclose(res.images[..., 0], res.images[..., 2])          # gray: luminance only


# -- LBP ----------------------------------------------------------------------------------------

def test_lbp_quantisation_table():
    t = L.TABLE
    assert t.shape == (256,) and set(np.unique(t)) == set(range(58))
    assert np.sum(t < 56) == 56                      # one code each for the 56 uniform patterns
    assert t[0] == t[255] == L.FLAT                  # the two flat patterns share bin 56
    assert t[0b00000111] == 0 * 7 + 2                # run of 3 ones starting at neighbour 0
    assert t[0b10000001] == 7 * 7 + 1                # wraps round: starts at neighbour 7, length 2
    assert t[0b00000101] == L.OTHER                  # two runs: not uniform
    assert t[0b01010101] == L.OTHER


@pytest.mark.parametrize("h,w,cell", [(37, 53, 16), (16, 16, 16), (50, 21, 8)])
def test_lbp_histograms_count_the_pixels_of_each_cell(h, w, cell):
    rep = R.get("lbp", params={"cell": cell})
    f = rep.features(torch.rand(2, 3, h, w), "lbp")
    hc, wc = math.ceil(h / cell), math.ceil(w / cell)
    assert f.shape == (2, 58, hc, wc)
    expected = np.array([[min(cell, h - i * cell) * min(cell, w - j * cell) for j in range(wc)] for i in range(hc)])
    assert np.array_equal(f.sum(1)[0].numpy(), expected) and np.array_equal(f.sum(1)[1].numpy(), expected)
    assert rep.layer_info(None, h).shape == (58, hc, hc)


def test_lbp_codes_of_hand_made_images():
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert (L.lbp_codes(flat) == L.FLAT).all()       # nothing is brighter than the centre
    x = edge_image(0, 8)                             # dark left half, bright right half
    codes = L.lbp_codes(x)[0]
    # Just left of the edge the three eastern neighbours (bits 7, 0, 1) are brighter: a run of 3
    # ones starting at neighbour 7 → bin 7·7 + 2.
    assert (codes[1:-1, 3] == 7 * 7 + 2).all()
    assert (codes[:, 0] == L.FLAT).all() and (codes[:, 7] == L.FLAT).all()


def test_lbp_and_sift_are_refused_by_optimisation_with_a_pointer_to_decoders(chelsea):
    for name in ("lbp", "sift"):
        rep = R.get(name)
        assert rep.differentiable is False
        with pytest.raises(R.RepresentationError, match="not differentiable.*decoder"):
            next(run(rep, chelsea, None, OptimizeParams(iters=2, size=64)))


# -- sparse SIFT --------------------------------------------------------------------------------

def test_sparse_sift_places_each_keypoint_in_its_cell():
    rep = R.get("sift")
    x = blobs(96)
    found, kept = rep.keypoints(x)
    assert len(found) > len(kept) > 5
    f = rep.features(x, "sift")[0].numpy()
    assert f.shape == (CHANNELS, 24, 24)
    occupied = np.argwhere(np.abs(f).sum(0) > 0)
    assert len(occupied) == len(kept)                # one keypoint per occupied cell, empty cells zero
    for k in kept:
        cy, cx = int(k.y // 4), int(k.x // 4)
        v = f[:, cy, cx]
        assert np.allclose(v[:DESCRIPTOR], k.descriptor, atol=1e-6)
        assert 0.9 < np.linalg.norm(v[:DESCRIPTOR]) < 1.1
        assert v[DESCRIPTOR] == pytest.approx(k.x - 4 * cx, abs=1e-4) and 0 <= v[DESCRIPTOR] < 4
        assert v[DESCRIPTOR + 1] == pytest.approx(k.y - 4 * cy, abs=1e-4) and 0 <= v[DESCRIPTOR + 1] < 4
        t = math.radians(k.angle)
        assert v[DESCRIPTOR + 2] == pytest.approx(math.sin(t), abs=1e-5)
        assert v[DESCRIPTOR + 3] == pytest.approx(math.cos(t), abs=1e-5)
        assert v[DESCRIPTOR + 4] == pytest.approx(math.log(k.size), abs=1e-5)


def test_sparse_sift_choice_among_a_cells_keypoints_is_seeded():
    x = blobs(96, seed=3)
    coarse = lambda seed: R.get("sift", params=SIFTParams(cell=16, seed=seed)).features(x, "sift")  # noqa: E731
    assert torch.equal(coarse(0), coarse(0))
    assert any(not torch.equal(coarse(0), coarse(s)) for s in range(1, 6))   # 16-px cells share keypoints


def test_sparse_sift_shapes_for_odd_sizes_and_a_blank_image():
    rep = R.get("sift")
    assert rep.features(torch.rand(1, 3, 37, 53), "sift").shape == (1, CHANNELS, 10, 14)
    assert rep.features(torch.full((1, 3, 30, 30), 0.5), "sift").abs().sum() == 0   # no keypoints: all zero


# -- parameters, pictures, presets, CLI ---------------------------------------------------------

def test_representation_params_from_dicts_with_clear_errors():
    assert R.get("hog", params={"cell": "4"}).layer_info(None, 64).shape == (31, 16, 16)
    assert R.get("hog", params={"orientations": 6}).layer_info(None, 64).shape == (22, 8, 8)
    with pytest.raises(R.RepresentationError, match="cel.*its parameters: cell, orientations"):
        R.get("hog", params={"cel": 4})
    with pytest.raises(R.RepresentationError, match="below its minimum"):
        R.get("lbp", params={"cell": 1})
    with pytest.raises(R.RepresentationError, match="no parameters of its own"):
        R.make_params("efficientnet_lite0", {"cell": 4})
    assert R.parse_params(["cell=4,orientations=6", "bin-size=3"]) == {"cell": "4", "orientations": "6",
                                                                       "bin_size": "3"}
    with pytest.raises(R.RepresentationError, match="NAME=VALUE"):
        R.parse_params(["cell"])
    rec = R.get("dsift", params={"step": 8}).describe()
    assert rec["representation_params"]["step"] == 8


@pytest.mark.parametrize("name", ["hog", "hogb", "dsift", "lbp", "sift"])
def test_every_hand_crafted_representation_draws_itself(name, chelsea):
    from invgui.core.images import image_batch

    pic = R.get(name).visualize(image_batch(chelsea, 64))
    assert pic.dtype == np.uint8 and pic.ndim == 3 and pic.shape[2] == 3 and pic.max() > pic.min()
    assert R.get("efficientnet_lite0", random_weights=True).visualize(image_batch(chelsea, 64)) is None


def test_hog_glyph_is_drawn_along_the_edge():
    """Bin 0 holds horizontal gradients (a vertical edge): its bar must be vertical."""
    hist = np.zeros((9, 1, 1), np.float32)
    hist[0] = 1
    g = hog_glyphs(hist, glyph=15)[..., 0].astype(float)
    assert g[:, 7].sum() > 5 * g[7, :].sum() / 15 * 3      # bright column through the centre
    assert g[:, 7].sum() > 4 * g[:, 1].sum() + 1


def test_shallow_preset_is_deep_goggles_schedule():
    p = PRESETS.get("mv2015-shallow")
    assert p.iters == 800 and p.optimizer == "sgd" and p.momentum == 0.9 and p.reset_momentum
    assert [lr_at(p, i) for i in (0, 199, 200, 400, 600, 799)] == pytest.approx(
        [0.004, 0.004, 0.0004, 0.00004, 0.000004, 0.000004])


@pytest.mark.parametrize("name,shape", [("hog", "31×8×8"), ("hogb", "31×8×8"), ("dsift", "128×11×11"),
                                        ("lbp", "58×4×4"), ("sift", "133×16×16")])
def test_cli_layers_prints_the_single_node(name, shape, capsys):
    assert main(["layers", name, "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert shape in out and "parameters:" in out


def test_cli_rep_params_features_picture_and_refusals(tmp_path, capsys):
    assert main(["layers", "hog", "--size", "64", "--rep-param", "cell=4"]) == 0
    assert "31×16×16" in capsys.readouterr().out
    assert main(["layers", "hog", "--rep-param", "cel=4"]) == 2
    assert "its parameters: cell, orientations" in capsys.readouterr().err
    assert main(["invert", "sample:coffee", "--model", "lbp", "--size", "64"]) == 2
    assert "decoder" in capsys.readouterr().err
    feats, pic = tmp_path / "f.pt", tmp_path / "kp.png"
    assert main(["features", "sample:coffee", "--model", "sift", "--size", "64", "--out", str(feats),
                 "--picture", str(pic)]) == 0
    assert pic.exists() and feats.exists()
    # Features made with other parameters are refused, naming the difference.
    feats = tmp_path / "hog4.pt"
    assert main(["features", "sample:coffee", "--model", "hog", "--size", "64", "--rep-param", "cell=4",
                 "--out", str(feats)]) == 0
    capsys.readouterr()
    assert main(["invert", "--model", "hog", "--target-features", str(feats), "--iters", "2", "-q",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "cell 4 (here 8)" in capsys.readouterr().err
    assert main(["invert", "--model", "hog", "--rep-param", "cell=4", "--target-features", str(feats),
                 "--iters", "2", "-q", "--out", str(tmp_path / "x.png")]) == 0


def test_cli_invert_dsift_writes_the_features_picture(tmp_path, capsys):
    out = tmp_path / "d.png"
    assert main(["invert", "sample:coffee", "--model", "dsift", "--size", "48", "--iters", "3", "-q",
                 "--out", str(out)]) == 0
    assert (tmp_path / "d-features.png").exists()
    rec = json.loads((tmp_path / "d.json").read_text())
    assert rec["representation"] == "dsift" and rec["representation_params"]["bin_size"] == 8
    assert rec["features_picture"].endswith("d-features.png")


@pytest.mark.parametrize("params", [DSIFTParams(), DSIFTParams(bin_size=3, step=2, orientations=6, spatial_bins=3),
                                    DSIFTParams(bin_size=5, step=7, clip=0.3)])
def test_dsift_equals_kornias_module(params):
    """The faster pooling gives exactly kornia's DenseSIFTDescriptor output (flat patches included)."""
    rep = R.get("dsift", params=params)
    x = torch.rand(2, 3, 50, 61)
    x[:, :, :25, :30] = 0.5                                      # a flat patch: zero descriptors there
    gray = R.base.luma255(x)
    assert torch.allclose(rep.features(x, "dsift"), rep.module(gray), atol=1e-6)
