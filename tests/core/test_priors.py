"""Issue 30: the image parameterisations past the 2015 prior — decorrelated Fourier (and MACO's
phase-only variant) and the Deep Image Prior — beside pixels, on small CPU inputs."""

import dataclasses

import numpy as np
import pytest
import torch

from invgui.core import representations as R
from invgui.core.events import Result, Step
from invgui.core.images import load_image
from invgui.core.methods.optimize import PRESETS, OptimizeParams, Target, run, run_batch
from invgui.core.methods.optimize_params import OBJECTIVES, PARAMETERISATIONS
from invgui.core.methods.parameterisations import DeepImagePrior, Fourier, natural_magnitude

# Small: 64 px, a shallow generator, few iterations.
SMALL = {"pixel": OptimizeParams(iters=4, size=64, preview_every=2),
         "fourier": dataclasses.replace(PRESETS.get("lucent"), iters=4, size=64, preview_every=2),
         "dip": dataclasses.replace(PRESETS.get("dip"), iters=3, size=64, preview_every=2, dip_width=8, dip_depth=2)}


def results(events) -> list[Result]:
    return [e for e in events if isinstance(e, Result)]


def sigma_maps(mean=(0.5, 0.5, 0.5), sigma=64.0):
    m = torch.tensor(mean).view(1, 3, 1, 1)
    return (lambda u: m + sigma / 255 * u), (lambda x: (x - m) / (sigma / 255))


@pytest.mark.parametrize("name", PARAMETERISATIONS)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_parameterisation_runs_every_objective(effnet, chelsea, name, objective):
    p = dataclasses.replace(SMALL[name], objective=objective, channels="0-3" if objective == "maximise" else "")
    events = list(run(effnet, chelsea, "blocks.1", p))
    (res,) = results(events)
    assert res.images.shape == (1, 64, 64, 3) and np.isfinite(res.images).all()
    assert res.record["params"]["parameterisation"] == name
    assert len([e for e in events if isinstance(e, Step)]) == p.iters and np.isfinite(res.history["total"]).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fourier", "dip"])
def test_restarts_and_a_batch_of_images_give_each_image_its_own_runs_result(effnet, chelsea, name):
    coffee = load_image("sample:coffee")
    p = dataclasses.replace(SMALL[name], restarts=2)
    both = results(run_batch(effnet, [Target(chelsea), Target(coffee)], "blocks.1", p))
    for img, res in zip((chelsea, coffee), both, strict=True):
        (alone,) = results(run(effnet, img, "blocks.1", p))
        assert res.images.shape == alone.images.shape == (2, 64, 64, 3)
        # The same arithmetic in a larger batch: equal up to the rounding of batched kernels (the
        # pixel method's batch test allows 2e-3 per pixel after 12 iterations; these run 3-4).
        np.testing.assert_allclose(res.images, alone.images, atol=2e-3)
        np.testing.assert_allclose(res.history["total"], alone.history["total"], rtol=1e-3)
    assert not np.allclose(both[0].images[0], both[0].images[1], atol=1e-3)     # restarts differ


def test_an_images_spectrum_renders_the_image_back():
    to_rgb, from_rgb = sigma_maps((0.485, 0.456, 0.406))
    rgb = torch.from_numpy(np.ascontiguousarray(load_image("sample:coffee")[100:164, 200:264])).permute(2, 0, 1)[None]
    rgb = rgb.clamp(0.02, 0.98)             # inside the sigmoid's range, where the logit is well conditioned
    u = from_rgb(rgb)
    for natural in (False, True):
        f = Fourier(u, to_rgb, from_rgb, decay=1.0, natural=natural, noise=None, clamp=0.0)
        back = to_rgb(f.render(f.variable))
        # float32 FFTs of a 64×64 image, a 3×3 colour mix and its inverse, logit and sigmoid: each
        # rounds at ~1e-7 relative; 1e-4 per pixel is far above that and far below any visible change.
        if natural:   # MACO keeps the phase only: the magnitude is the photos' average, not this image's
            assert float((back - rgb).abs().mean()) > 0.01
        else:
            assert float((back - rgb).abs().max()) < 1e-4
    gray = Fourier(u[:, :1], to_rgb, from_rgb, decay=1.0, natural=False, noise=None, clamp=0.0)
    assert float((to_rgb(gray.render(gray.variable))[:, :1] - rgb[:, :1]).abs().max()) < 1e-4


def test_maco_optimises_the_phase_under_the_natural_magnitude():
    to_rgb, from_rgb = sigma_maps()
    noise = torch.randn(2, 3, 32, 17, 2)
    f = Fourier(torch.zeros(2, 3, 32, 32), to_rgb, from_rgb, decay=1.0, natural=True, noise=noise, clamp=0.0)
    assert f.variable.shape == (2, 3, 32, 17)                                 # phases only
    mag = natural_magnitude(32, 32, 3)
    assert mag.shape == (3, 32, 17) and bool((mag > 0).all())
    low, high = float(mag[:, 1, 1].mean()), float(mag[:, 16, 16].mean())
    assert low > 5 * high                                                    # natural photos: 1/f-like
    a = f.render(f.variable)
    b = f.render(f.variable + 0.5)                                           # another phase: another image
    assert a.shape == (2, 3, 32, 32) and float((a - b).abs().mean()) > 0.01


@pytest.mark.parametrize("side", [16, 37, 64, 100])
def test_the_generator_renders_any_input_side(side):
    to_rgb, from_rgb = sigma_maps()
    dip = DeepImagePrior(torch.zeros(2, 3, side, side), to_rgb, from_rgb, width=8, depth=3, input_noise=0.1,
                         seed=0, restarts=2, fit_start=False, clamp=0.0)
    u = dip.render(dip.variable, train=True)
    assert u.shape == (2, 3, side, side) and bool(torch.isfinite(u).all())
    rgb = to_rgb(dip.image())
    assert float(rgb.min()) >= 0 and float(rgb.max()) <= 1
    with pytest.raises(Exception, match="at least 16 px"):
        DeepImagePrior(torch.zeros(1, 3, 12, 12), to_rgb, from_rgb, width=8, depth=4, input_noise=0.0, seed=0,
                       restarts=1, fit_start=False, clamp=0.0)


def test_the_grouped_generators_are_the_plain_modules():
    """Restart r's image is exactly what the Generator module with restart r's weights makes."""
    from invgui.core.methods.parameterisations import Generator

    to_rgb, from_rgb = sigma_maps()
    dip = DeepImagePrior(torch.zeros(3, 3, 40, 40), to_rgb, from_rgb, width=8, depth=2, input_noise=0.0,
                         seed=5, restarts=3, fit_start=False, clamp=0.0)
    out, one_by_one = dip.grouped(dip.variable, dip.z), dip.generate(dip.variable, dip.z)   # GPU's way, CPU's way
    torch.testing.assert_close(out, one_by_one, atol=1e-5, rtol=1e-5)
    for r in range(3):
        net = Generator(32, 8, 2, 3)
        parts = torch.split(dip.variable[r], dip.sizes)
        net.load_state_dict({k: p.view(s) for k, p, s in zip(dip.names, parts, dip.shapes, strict=True)})
        # One convolution grouped by restart against R separate ones: the same sums, in float32.
        torch.testing.assert_close(out[r:r + 1], net(dip.z[r:r + 1]), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fourier", "dip"])
def test_the_hybrid_start_is_the_start_image_in_each_parameterisation(effnet, chelsea, name):
    from invgui.core.images import resize_center_crop

    start = resize_center_crop(load_image("sample:coffee"), 64)
    p = dataclasses.replace(SMALL[name], iters=1, lr=0.0)      # one step that moves nothing: the start itself
    if name == "dip":               # a generator of 8 channels on 2 levels fits a photo too coarsely to tell
        p = dataclasses.replace(p, dip_width=16, dip_depth=3)
    (res,) = results(run_batch(effnet, [Target(chelsea, start=start)], "blocks.1", p))
    (free,) = results(run(effnet, chelsea, "blocks.1", p))
    # The first restart starts at the given image: its spectrum renders it back (fourier); the
    # generator is fitted to it in 100 Adam steps (dip): close, not exact — at least twice as close
    # as the same run started from noise.
    err, other = (float(np.abs(r.images[0] - start).mean()) for r in (res, free))
    assert err < 0.02 if name == "fourier" else err < 0.5 * other


def test_presets_and_sessions_keep_the_parameterisation(tmp_path):
    from invgui.core.methods.registry import OPTIMIZE
    from invgui.core.session import Run, Session

    assert PRESETS.get("lucent").parameterisation == "fourier" and PRESETS.get("dip").parameterisation == "dip"
    s = Session()
    s.add(Run.of(method=OPTIMIZE.name, model="efficientnet_lite0", layer="blocks.1",
                 params=dataclasses.replace(PRESETS.get("lucent"), magnitude="natural", decay=1.5)))
    back = Session.load(s.save(tmp_path / "s.invgui")).runs[0]
    assert back.params.parameterisation == "fourier" and back.params.magnitude == "natural" and back.params.decay == 1.5


def test_a_handcrafted_gray_representation_inverts_with_each_parameterisation():
    hog = R.get("hog")
    img = load_image("sample:coffee")
    for name in ("fourier", "dip"):
        (res,) = results(run(hog, img, "hog", SMALL[name]))
        im = res.images[0]
        assert np.allclose(im[..., 0], im[..., 2])                          # gray: HOG sees luminance only


def test_a_sweep_over_the_parameterisation_gives_each_prior_its_own_schedule():
    from invgui.core.compare import sweep_param
    from invgui.core.methods.registry import OPTIMIZE
    from invgui.core.session import Run

    template = Run.of(method=OPTIMIZE.name, model="efficientnet_lite0", layer="blocks.1",
                      params=OptimizeParams(iters=7, restarts=2, seed=3))
    runs = sweep_param(template, "parameterisation", ["pixel", "fourier", "dip"])
    got = [(r.params.parameterisation, r.params.optimizer, r.params.lr) for r in runs]
    assert got == [("pixel", "sgd", 0.004), ("fourier", "adam", 0.05), ("dip", "adam", 0.001)]
    assert all((r.params.iters, r.params.restarts, r.params.seed) == (7, 2, 3) for r in runs)   # the rest kept


def test_a_new_parameterisation_brings_its_schedule_once_and_what_is_given_beside_it_wins():
    """Issue 39 §2: one place (optimize_params.changed) applies "a prior brings its own schedule",
    for the command line and a sweep alike; the parameterisations are chosen from one table."""
    from invgui.core.methods.optimize_params import PARAMETERISATIONS, changed
    from invgui.core.methods.parameterisations import KINDS

    assert tuple(KINDS) == PARAMETERISATIONS and all(cls.name == name for name, cls in KINDS.items())
    base = OptimizeParams(iters=7, seed=3)
    fourier = changed(base, parameterisation="fourier")
    assert (fourier.optimizer, fourier.lr, fourier.iters, fourier.seed) == ("adam", 0.05, 7, 3)
    assert changed(base, parameterisation="fourier", lr=0.01).lr == 0.01          # given beside it: wins
    assert changed(fourier, lr=0.2).optimizer == "adam"                           # no new prior: a plain change
    assert changed(fourier, parameterisation="fourier") == fourier                # the same prior: nothing moves


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fourier", "dip"])
@pytest.mark.parametrize("case, expect", [({}, "on"), ({"fail_at": 5}, "off: replay failed at iteration 5"),
                                          ({"corrupt_at": 1}, "off: differed from an eager step at iteration 1")])
def test_the_cuda_graph_path_and_its_fallbacks_give_the_eager_run(effnet, chelsea, monkeypatch, fake_graph, name, case,
                                                                  expect):
    """The graph path replays, checks and restores the step's buffers; a rendered parameterisation's
    step must depend on nothing else (the DIP's input perturbation is a function of the step
    counter for this reason: a random stream would run on through the check and the fallback)."""
    import invgui.core.methods.optimize as O

    p = dataclasses.replace(SMALL[name], iters=6, preview_every=2, restarts=2)
    eager = results(run(effnet, chelsea, "blocks.1", dataclasses.replace(p, cuda_graph=False)))[0]
    monkeypatch.setattr(O, "_can_graph", lambda device: True)
    monkeypatch.setattr(O, "capture", lambda stepper: fake_graph(stepper, **case))
    res = results(run(effnet, chelsea, "blocks.1", p))[0]
    assert res.record["resolved"]["cuda_graph"].startswith(expect)
    # The same eager operations in one process: equal up to nothing but the order of evaluation.
    np.testing.assert_allclose(res.images, eager.images, atol=1e-6)
    assert res.history["total"] == pytest.approx(eager.history["total"], rel=1e-6)


def test_fourier_tv_puts_the_2015_regularisers_on_the_rendered_spectrum(effnet, chelsea):
    """`fourier-tv`: Lucent's parameterisation and schedule with the α-norm and TV^β of `fast`; the
    TV term is measured on the rendered image and enters the total (it is 0 under `lucent`)."""
    ftv, lucent, fast = (PRESETS.get(n) for n in ("fourier-tv", "lucent", "fast"))
    assert ftv.parameterisation == "fourier" and (ftv.optimizer, ftv.lr) == (lucent.optimizer, lucent.lr)
    assert (ftv.alpha_weight, ftv.tv_weight) == (fast.alpha_weight, fast.tv_weight)
    hist = {}
    for name in ("lucent", "fourier-tv"):
        p = dataclasses.replace(PRESETS.get(name), iters=3, size=64, preview_every=3)
        hist[name] = next(e for e in run(effnet, chelsea, "blocks.1", p) if isinstance(e, Result)).history
    assert hist["lucent"]["tv"] == [0.0, 0.0, 0.0]
    assert all(t > 0 for t in hist["fourier-tv"]["tv"][1:])
    # total = feature + α + TV, each as logged (float32 sums: a few ulps of ~1)
    for tot, f, a, t in zip(*(hist["fourier-tv"][k] for k in ("total", "feature", "alpha", "tv")), strict=True):
        assert tot == pytest.approx(f + a + t, rel=1e-5)
