import dataclasses

import numpy as np
import pytest
import torch

from invgui.core import metrics
from invgui.core.events import Result, Status, Step
from invgui.core.methods.optimize import PRESETS, OptimizeParams, lr_at, run
from invgui.core.regularizers import alpha_norm, tv_beta

SMALL = OptimizeParams(iters=20, size=96, preview_every=5)


def collect(gen):
    events = list(gen)
    steps = [e for e in events if isinstance(e, Step)]
    result = events[-1]
    assert isinstance(result, Result)
    return steps, result


def test_steps_losses_and_previews(effnet, chelsea):
    steps, res = collect(run(effnet, chelsea, "blocks.2", SMALL))
    assert [s.i for s in steps] == list(range(1, 21))
    assert all(set(s.losses) == {"total", "feature", "alpha", "tv"} for s in steps)
    previews = [s.i for s in steps if s.preview is not None]
    assert previews == [5, 10, 15, 20]
    assert steps[4].preview.shape == (96, 96, 3) and steps[4].preview.dtype == np.uint8
    assert res.images.shape == (1, 96, 96, 3)
    assert len(res.history["total"]) == 20
    for s in steps:
        assert s.losses["total"] == pytest.approx(s.losses["feature"] + s.losses["alpha"] + s.losses["tv"], rel=1e-4)


def test_loss_and_representation_error_decrease(effnet, chelsea):
    p = dataclasses.replace(SMALL, iters=60)
    _, res = collect(run(effnet, chelsea, "blocks.2", p))
    h = res.history
    assert h["feature"][-1] < 0.5 * h["feature"][0]
    assert h["total"][-1] < h["total"][0]
    assert res.metrics["representation_error"] < 0.6 * res.metrics["start_representation_error"]
    for k in ("psnr", "ssim", "seconds", "iterations_per_second"):
        assert np.isfinite(res.metrics[k])


def test_same_seed_same_result_other_seed_differs(effnet, chelsea):
    p = dataclasses.replace(SMALL, iters=8)
    _, a = collect(run(effnet, chelsea, "blocks.1", p))
    _, b = collect(run(effnet, chelsea, "blocks.1", p))
    _, c = collect(run(effnet, chelsea, "blocks.1", dataclasses.replace(p, seed=1)))
    assert np.array_equal(a.images, b.images)
    assert a.history == b.history
    assert not np.array_equal(a.images, c.images)


def test_should_stop_ends_early_with_a_result(effnet, chelsea):
    calls = []
    gen = run(effnet, chelsea, "blocks.1", dataclasses.replace(SMALL, iters=1000),
              should_stop=lambda: len(calls) >= 3 or calls.append(1) and False)
    steps, res = collect(gen)
    assert res.stopped and "stopped by the user" in res.message
    assert len(steps) == len(res.history["total"]) < 1000


def test_close_cancels(effnet, chelsea):
    gen = run(effnet, chelsea, "blocks.1", dataclasses.replace(SMALL, iters=1000))
    for ev in gen:
        if isinstance(ev, Step):
            break
    gen.close()                      # no exception, no result: cancelled


def test_divergence_names_term_and_keeps_last_good_image(effnet, chelsea):
    p = dataclasses.replace(SMALL, iters=200, lr=5.0, preview_every=1)
    steps, res = collect(run(effnet, chelsea, "blocks.1", p))
    assert res.stopped
    assert "diverged" in res.message and "lower the learning rate" in res.message
    assert any(t in res.message for t in ("feature", "alpha", "tv"))
    assert np.isfinite(res.images).all()
    assert all(np.isfinite(list(s.losses.values())).all() for s in steps)


def test_first_event_is_status_and_invalid_params_rejected(effnet, chelsea):
    assert isinstance(next(run(effnet, chelsea, None, SMALL)), Status)
    with pytest.raises(ValueError, match="Iterations"):
        next(run(effnet, chelsea, None, dataclasses.replace(SMALL, iters=0)))


def test_step_schedule():
    p = OptimizeParams(iters=400, lr=1.0, lr_milestones=(0.25, 0.75), lr_decay=0.1)
    assert lr_at(p, 0) == 1.0 and lr_at(p, 99) == 1.0
    assert lr_at(p, 100) == pytest.approx(0.1) and lr_at(p, 300) == pytest.approx(0.01)


def test_tv_differences_spatial_axes_not_colour():
    u = torch.zeros(1, 3, 8, 8)
    u[:, 0], u[:, 1], u[:, 2] = 1.0, -1.0, 0.5            # flat in space, different colours
    assert float(tv_beta(u, 2.0)) == 0.0
    u[:, :, :, 4:] += 1.0                                  # a vertical edge
    assert float(tv_beta(u, 2.0)) > 0
    assert float(tv_beta(u, 1.0)) > 0


def test_alpha_norm():
    u = torch.full((2, 3, 4, 4), 2.0)
    assert torch.allclose(alpha_norm(u, 6.0), torch.tensor([64.0, 64.0]))


def test_presets_are_frozen_instances():
    p = PRESETS.get("default")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.iters = 3
    with pytest.raises(KeyError, match="unknown preset"):
        PRESETS.get("nope")


def test_step_events_report_the_scheduled_rate(effnet, chelsea):
    p = dataclasses.replace(SMALL, iters=10, lr_milestones=(0.3,), preview_every=10)
    steps, _ = collect(run(effnet, chelsea, "blocks.0", p))
    assert [s.lr for s in steps[:4]] == pytest.approx([p.lr] * 3 + [p.lr * p.lr_decay])


@pytest.mark.parametrize("alpha,beta", [(6.0, 2.0), (3.0, 1.0), (6.0, 1.5), (2.0, 3.0)])
@pytest.mark.numerics
def test_fused_priors_match_autograd_and_pass_gradcheck(alpha, beta):
    from invgui.core.regularizers import priors

    torch.manual_seed(0)
    u = torch.randn(2, 3, 7, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: priors(v, alpha, 0.3, beta, 0.7)[0], (u,))
    ref = 0.3 * alpha_norm(u, alpha) + 0.7 * tv_beta(u, beta)
    total, ra, rv = priors(u, alpha, 0.3, beta, 0.7)
    assert torch.allclose(total, ref) and torch.allclose(ra + rv, ref)
    assert not ra.requires_grad and not rv.requires_grad
    g_ref, = torch.autograd.grad(ref.sum(), u)
    g, = torch.autograd.grad(total.sum(), u)
    assert torch.allclose(g, g_ref)


@pytest.mark.parametrize("kind,momentum,decay", [("sgd", 0.9, 0.9), ("rmsprop", 0.9, 0.9), ("rmsprop", 0.0, 0.99),
                                                 ("adam", 0.9, 0.99)])
@pytest.mark.numerics
def test_hand_written_updates_match_torch_optim(kind, momentum, decay):
    """The stepper's updates (device-side state, capturable) do what torch.optim does, through a rate
    change and a state reset (a fresh torch.optim optimiser)."""
    from invgui.core.methods.stepper import Update

    torch.manual_seed(0)
    target = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    ours = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    ref = ours.clone().requires_grad_(True)
    update = Update(kind, ours, momentum, decay)

    def make(lr):
        if kind == "sgd":
            return torch.optim.SGD([ref], lr=lr, momentum=momentum)
        if kind == "rmsprop":
            return torch.optim.RMSprop([ref], lr=lr, alpha=decay, momentum=momentum, eps=1e-8)
        return torch.optim.Adam([ref], lr=lr, betas=(momentum, decay))

    opt = make(0.05)
    for lr, steps, reset in ((0.05, 7, False), (0.005, 5, False), (0.02, 6, True)):
        for g in opt.param_groups:
            g["lr"] = lr
        if reset:
            opt = make(lr)
            update.reset()
        update.set_lr(lr)
        for _ in range(steps):
            opt.zero_grad()
            (ref - target).pow(2).sum().backward()
            opt.step()
            update(ours, 2 * (ours - target))
        assert torch.isfinite(ours).all() and not torch.equal(ours, target)
        assert torch.allclose(ours, ref.detach(), rtol=1e-9, atol=1e-12), (kind, lr)


def test_device_side_jitter_is_torch_roll():
    from invgui.core.methods.stepper import Stepper, Update

    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).view(2, 3, 5, 7)
    shifts = torch.tensor([[2, -3], [-1, 6], [0, 0]])
    u = x.clone().requires_grad_(True)
    s = Stepper(u, Update("sgd", u, 0.0, 0.0), lambda v: v, None, 4, 3, shifts)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        s.it.fill_(i)
        assert torch.equal(s._jitter(x), torch.roll(x, shifts=(dy, dx), dims=(2, 3)))


def test_the_run_record_says_whether_a_cuda_graph_ran(effnet, chelsea):
    _, res = collect(run(effnet, chelsea, "blocks.1", dataclasses.replace(SMALL, iters=2)))
    assert res.record["resolved"]["cuda_graph"] == "off"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("model,preset,layer", [("efficientnet_lite0", "fast", "blocks.3"),
                                                ("efficientnet_lite0", "mv2016", "blocks.3"),
                                                ("hog", "mv2015-shallow", None), ("hog", "mv2016", None)])
def test_cuda_graph_and_eager_agree(model, preset, layer, chelsea):
    """Captured and eager optimisation reach the same representation error after 50 iterations
    (fixed seed; two presets, two representations; mv2016 covers jitter, the accumulator, the
    colour-norm clamp and the stage switch)."""
    from invgui.core import representations as R

    rep = R.get(model)
    base = dataclasses.replace(PRESETS.get(preset), restarts=2, preview_every=10)
    if preset == "mv2016":
        base = dataclasses.replace(base, iters=40, stage2_iters=10)
    else:
        base = dataclasses.replace(base, iters=50)
    out = {}
    for graph in (False, True):
        events = list(run(rep, chelsea, layer, dataclasses.replace(base, cuda_graph=graph), device="cuda"))
        res = events[-1]
        assert res.record["resolved"]["cuda_graph"] == ("on" if graph else "off")
        assert res.metrics["iterations"] == 50
        out[graph] = res.metrics["representation_error"]
    assert abs(out[True] - out[False]) < 1e-4, out


# -- several targets in one batch (issue 13 §2) ----------------------------------------------------
def batch_events(rep, targets, layer, params, **kw):
    from invgui.core.methods.optimize import run_batch

    events = list(run_batch(rep, targets, layer, params, **kw))
    results = [e for e in events if isinstance(e, Result)]
    steps = [e for e in events if isinstance(e, Step)]
    return steps, results


@pytest.mark.numerics
def test_a_batch_of_images_ends_where_each_image_alone_would(effnet, chelsea):
    """Two images × two restarts in one batch: each item's images, losses and metrics are those
    of its own run (same seed), its steps carry its index and its record says which item it was."""
    from invgui.core.images import load_image
    from invgui.core.methods.optimize import Target

    coffee = load_image("sample:coffee")
    p = dataclasses.replace(SMALL, iters=12, restarts=2)
    steps, results = batch_events(effnet, [Target(chelsea, label="chelsea"), Target(coffee, label="coffee")],
                                  "blocks.2", p)
    assert [r.record["batch_index"] for r in results] == [0, 1]
    assert all(r.record["batch"] == 2 for r in results)
    for k, (img, res) in enumerate(zip((chelsea, coffee), results, strict=True)):
        _, alone = collect(run(effnet, img, "blocks.2", p))
        assert res.images.shape == alone.images.shape == (2, 96, 96, 3)
        np.testing.assert_allclose(res.images, alone.images, atol=2e-3)
        np.testing.assert_allclose(res.history["total"], alone.history["total"], rtol=1e-3)
        assert res.metrics["representation_error"] == pytest.approx(alone.metrics["representation_error"],
                                                                   rel=1e-3)
        assert res.metrics["psnr"] == pytest.approx(alone.metrics["psnr"], abs=0.05)
        mine = [s for s in steps if s.item == k]
        assert [s.i for s in mine] == list(range(1, 13))
        assert [s.i for s in mine if s.preview is not None] == [5, 10, 12]
    assert not np.allclose(results[0].images, results[1].images, atol=0.05)


@pytest.mark.numerics
def test_subset_variants_in_one_batch_match_their_own_runs(effnet, chelsea):
    from invgui.core.methods.optimize import Target

    # Adam (fast): momentum SGD at blocks.3 amplifies the rounding of a batched convolution (a
    # single run's first restart differs as much from the same run with 3 restarts: 0.05 per pixel).
    # Pixels are not compared one by one: with a window or a channel subset most pixels get a
    # gradient of rounding size only, and Adam turns such a gradient into a step of ±lr whatever
    # its sign (lr 0.2 σ = 0.05 per iteration), so which few pixels move depends on the CPU's
    # kernels (on an AVX-512 machine 136 of 27,648 pixels moved by up to 0.0155).  What those
    # pixels cannot change is what the objective sees: the feature term (its gradient there is
    # ~0, so their moves change it to second order only) and the image as a whole.
    p = dataclasses.replace(PRESETS.get("fast"), iters=10, size=96)
    variants = [("0-9", "centre:2"), ("first-half", ""), (None, None)]
    _, results = batch_events(effnet, [Target(chelsea, channels=c, window=w) for c, w in variants], "blocks.3", p)
    for (c, w), res in zip(variants, results, strict=True):
        own = dataclasses.replace(p, channels=c if c is not None else p.channels,
                                  window=w if w is not None else p.window)
        _, alone = collect(run(effnet, chelsea, "blocks.3", own))
        assert res.record["params"]["channels"] == own.channels and res.record["params"]["window"] == own.window
        # Measured 1e-5 apart under every kernel setting tried; a wrong subset or window changes
        # the feature term by far more than 1e-3.
        np.testing.assert_allclose(res.history["feature"], alone.history["feature"], rtol=1e-3)
        assert res.metrics["representation_error"] == pytest.approx(alone.metrics["representation_error"], rel=1e-3)
        # A few pixels apart by ≤ 2 × iters × 0.05 each: a PSNR of 40 dB allows 1 % of the pixels
        # 0.1 off (measured: ≥ 59 dB on AVX-512, ≥ 78 dB here); another subset's image is 16–20 dB away.
        assert metrics.psnr(res.images, alone.images) > 40.0
    # ... and the bound tells the variants apart.
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert metrics.psnr(results[a].images, results[b].images) < 30.0


def test_one_diverging_item_ends_alone_and_the_others_go_on(effnet, chelsea):
    """An item whose step explodes (target features ×1e-3: the normalised feature term's gradient
    grows 1e6×) ends with the divergence message and its last good image; the other item runs on."""
    from invgui.core.methods.optimize import Target

    with torch.no_grad():
        phi = effnet.features(torch.from_numpy(chelsea[:96, :96].copy()).permute(2, 0, 1)[None], "blocks.1")[0]
    p = dataclasses.replace(SMALL, iters=40, preview_every=1)
    steps, results = batch_events(effnet, [Target(features=phi * 1e-3), Target(chelsea)], "blocks.1", p)
    bad, good = results
    assert bad.stopped and "diverged" in bad.message
    assert np.isfinite(bad.images).all()
    assert not good.stopped and good.metrics["iterations"] == 40
    assert len([s for s in steps if s.item == 1]) == 40


def test_stop_ends_every_item_of_a_batch(effnet, chelsea):
    from invgui.core.methods.optimize import Target

    calls = []
    _, results = batch_events(effnet, [Target(chelsea), Target(chelsea[::-1].copy())], "blocks.1",
                              dataclasses.replace(SMALL, iters=1000),
                              should_stop=lambda: len(calls) >= 3 or calls.append(1) and False)
    assert len(results) == 2
    assert all(r.stopped and "stopped by the user" in r.message for r in results)


def test_batches_split_rows():
    from invgui.core.methods.optimize import batches

    assert [list(r) for r in batches(5, 2, limit=4)] == [[0, 1], [2, 3], [4]]
    assert [list(r) for r in batches(3, 100, limit=64)] == [[0], [1], [2]]


# --- The CUDA-graph path can never take a run down (issue 26 §3) ------------------------------------
# No GPU in CI: the graph is replaced by a stand-in whose replay is the eager step (so a healthy
# "graph" must give exactly the eager run's numbers: the same operations in the same process), and
# failures are injected into the capture, the replay and the replay's result.

@pytest.fixture
def fake_graphs(monkeypatch, fake_graph):
    import invgui.core.methods.optimize as O

    made = []

    def use(**kw):
        def capture(stepper):
            if kw.get("capture_fails"):
                raise RuntimeError("operation not permitted when stream is capturing (injected)")
            made.append(fake_graph(stepper, kw.get("fail_at"), kw.get("corrupt_at")))
            return made[-1]
        monkeypatch.setattr(O, "_can_graph", lambda device: True)
        monkeypatch.setattr(O, "capture", capture)
        return made
    return use


GRAPH_P = dataclasses.replace(SMALL, iters=12, preview_every=4, restarts=2)


@pytest.fixture
def eager_run(effnet, chelsea):
    return collect(run(effnet, chelsea, "blocks.1", dataclasses.replace(GRAPH_P, cuda_graph=False)))[1]


def _same_run(res, eager):
    # The same eager operations in one process: equal up to nothing but the order of evaluation.
    np.testing.assert_allclose(res.images, eager.images, atol=1e-6)
    assert res.history["total"] == pytest.approx(eager.history["total"], rel=1e-6)
    assert res.metrics["iterations"] == eager.metrics["iterations"] == GRAPH_P.iters


@pytest.mark.parametrize("case, expect", [
    ({}, "on"),
    ({"capture_fails": True}, "off: capture failed"),
    ({"fail_at": 7}, "off: replay failed at iteration 7"),                  # after a flush at 4: from 5
    ({"corrupt_at": 1}, "off: differed from an eager step at iteration 1"),
    ({"corrupt_at": 2}, "off: differed from an eager step at iteration 2"),
])
def test_a_failing_cuda_graph_falls_back_to_eager_steps(effnet, chelsea, fake_graphs, eager_run, case, expect):
    made = fake_graphs(**case)
    events = list(run(effnet, chelsea, "blocks.1", GRAPH_P))
    res = events[-1]
    assert res.record["resolved"]["cuda_graph"].startswith(expect)
    said = [e.message for e in events if isinstance(e, Status) and "CUDA graph" in e.message]
    assert bool(said) == (expect != "on")
    if case.get("fail_at"):
        assert "eager from iteration 5" in res.record["resolved"]["cuda_graph"]
        assert made[0].calls == 7                              # no replay after the failure
    _same_run(res, eager_run)
    assert [s.i for s in events if isinstance(s, Step) and s.item == 0] == list(range(1, GRAPH_P.iters + 1))


def test_graphs_can_be_turned_off(effnet, chelsea, fake_graphs, monkeypatch):
    from invgui.cli import build_parser
    from invgui.core.methods.optimize import OptimizeParams
    from invgui.core.params import from_arguments

    made = fake_graphs()
    monkeypatch.setenv("INVGUI_NO_CUDA_GRAPH", "1")
    res = collect(run(effnet, chelsea, "blocks.1", GRAPH_P))[1]
    assert res.record["resolved"]["cuda_graph"] == "off: INVGUI_NO_CUDA_GRAPH is set" and not made
    monkeypatch.delenv("INVGUI_NO_CUDA_GRAPH")
    res = collect(run(effnet, chelsea, "blocks.1", dataclasses.replace(GRAPH_P, cuda_graph=False)))[1]
    assert res.record["resolved"]["cuda_graph"] == "off" and not made
    for flag in ("--no-graph", "--no-cuda-graph"):
        args = build_parser().parse_args(["invert", "sample:cat", flag])
        assert from_arguments(OptimizeParams, args, OptimizeParams()).cuda_graph is False
    args = build_parser().parse_args(["invert", "sample:cat"])
    assert from_arguments(OptimizeParams, args, OptimizeParams()).cuda_graph is True


def test_the_record_says_which_part_of_a_non_square_image_was_used(effnet, chelsea):
    """Issue 27 §8: a non-square image was centre-cropped without a word."""
    _, res = collect(run(effnet, chelsea, "blocks.1", dataclasses.replace(SMALL, iters=1)))
    assert chelsea.shape[:2] == (300, 451)
    assert res.record["input_region"] == {"image_size": [451, 300], "crop": "centre", "framing": "crop",
                                           "region": [75, 0, 300, 300]}
