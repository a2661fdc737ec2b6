"""The application model: RunRequest and execute (the one entry point of CLI, window, sweeps, tests)."""

import dataclasses

import numpy as np
import pytest

from invgui.core.events import Result, Status, Step
from invgui.core.methods.optimize import PRESETS
from invgui.core.methods.probe import ProbeParams
from invgui.core.request import RequestError, RunRequest, execute, final_result, prepare


def test_execute_optimisation_yields_status_steps_and_result():
    req = RunRequest(model="hog", images=("sample:coffee",), params=PRESETS.get("fast").__class__(iters=3, size=64),
                     device="cpu")
    events = list(execute(req))
    assert isinstance(events[0], Status) and sum(isinstance(e, Step) for e in events) == 3
    res = events[-1]
    assert isinstance(res, Result) and res.images.shape == (1, 64, 64, 3) and res.record["layer"] == "hog"


def test_execute_decoder_batch_and_probe(tiny_hog_decoder):
    req = RunRequest(method="decoder", model="hog", images=("sample:coffee", "sample:chelsea"),
                     decoder=str(tiny_hog_decoder), device="cpu")
    res = final_result(execute(req))
    assert res.images.shape == (2, 32, 32, 3) and res.record["decoder"] == str(tiny_hog_decoder)
    probe = RunRequest(method="probe", model="hog", decoder=str(tiny_hog_decoder), probe=ProbeParams(probe="binarise"),
                       device="cpu")
    res = final_result(execute(probe))
    assert res.record["probe"] == "binarise" and len(res.images) == len(res.record["labels"])


def test_window_images_are_used_as_given():
    img = np.full((40, 40, 3), 0.5, np.float32)
    prep = prepare(RunRequest(model="hog", images=("in-memory",), device="cpu",
                              params=PRESETS.get("fast").__class__(iters=1, size=32)), images={"in-memory": img})
    assert prep.images[0] is img and prep.layer == "hog" and prep.size == 32


def test_requests_round_trip_and_refuse_what_cannot_run():
    req = RunRequest(model="dsift", images=("a.png",), params=PRESETS.get("mv2016"), rep_params=(("step", 3),),
                     layer="dsift", size=64)
    back = RunRequest.from_dict(req.to_dict())
    assert back == req and back.rep_params_dict() == {"step": 3}
    for bad, message in [(RunRequest(method="paint"), "method"),
                         (RunRequest(method="probe", images=("a.png", "b.png"), probe=ProbeParams()), "one image"),
                         (RunRequest(images=("a.png", "b.png"), target_features="f.pt"), "at most one image"),
                         (RunRequest(method="probe"), "probe parameters"),
                         (RunRequest(size=5), "outside")]:
        with pytest.raises(ValueError, match=message):
            bad.validate()
    with pytest.raises(RequestError):
        RunRequest(images=()).validate()
    with pytest.raises(ValueError, match="not differentiable|decoder"):
        prepare(RunRequest(model="lbp", device="cpu"))


def test_one_summary_for_the_cli_the_run_list_and_the_captions():
    from invgui.core import compare
    from invgui.core.results import summary
    from invgui.core.session import Run

    res = Result(images=np.zeros((2, 8, 8, 3), np.float32), target=None, history={},
                 metrics={"start_representation_error": 1.2, "representation_error": 0.25,
                          "representation_error_std": 0.01, "psnr": 21.0, "psnr_std": 0.5, "ssim": 0.5,
                          "ssim_std": 0.1, "iterations": 10, "seconds": 0.5, "iterations_per_second": 20.0},
                 record={"method": "optimize", "params": {"objective": "invert"}})
    assert summary(res) == ("representation error 1.2000 -> 0.2500 ± 0.0100; PSNR 21.00 ± 0.50 dB; SSIM 0.500 ± "
                            "0.100; 10 it in 0.5 s (20.0 it/s)")
    run = Run.of(method="optimize", model="hog", layer="hog", image="x", state="done", result=res)
    assert run.summary() == "done: rep. error 0.250, PSNR 21.0, 500 ms" == f"done: {summary(res, 'short')}"
    assert compare.caption(run, 0.42) == "rep 0.250 · nre 0.420 · 21.0 dB / 0.50 · 500 ms"
    res.record["device"] = "cuda:0"
    assert summary(res, "short") == "rep. error 0.250, PSNR 21.0, 500 ms on cuda:0"
    res.record["batch"] = 3                          # computed with two other runs: the time is the batch's
    assert summary(res, "short") == "rep. error 0.250, PSNR 21.0, 500 ms (batch of 3) on cuda:0"
    assert summary(res, "caption").endswith("500 ms (batch of 3)") and summary(res).endswith("(batch of 3)")
    assert "(batch of 3)" in summary(res, "html")
    del res.record["batch"]
    with pytest.raises(ValueError):
        summary(res, "poem")
    html = summary(res, "html")
    assert "0.250 ± 0.010" in html and "PSNR 21.00 ± 0.50 dB" in html and "10 iterations" in html


@pytest.mark.parametrize("method", ["optimize", "decoder", "hybrid"])
def test_every_summary_style_reads_a_result_with_only_what_a_session_file_must_hold(method):
    """Session.load requires these metrics and accepts PSNR without SSIM: no summary may then fail
    (the window's result panel raised TypeError on such a file)."""
    from invgui.core.methods.registry import METHODS
    from invgui.core.results import STYLES, summary

    metrics = {k: 1.0 for k in METHODS[method].metric_keys}
    metrics["psnr"] = 20.0
    res = Result(images=np.zeros((2, 8, 8, 3), np.float32), target=None, history={}, metrics=metrics,
                 record={"method": method, "representation": "hog", "layer": "hog", "layer_shape": [1],
                         "decoder": "d.pt", "params": {"objective": "neuron"}})
    for style in STYLES:
        assert summary(res, style)
    assert "SSIM n/a" in summary(res, "html")


def test_metrics_are_typed_and_absent_ones_are_none():
    from invgui.core.results import Metrics

    m = Metrics.of({"representation_error": 0.3, "psnr": None, "something_new": 1})
    assert m.representation_error == 0.3 and m.psnr is None and m.iterations is None
    with pytest.raises(AttributeError):
        m.something_new  # noqa: B018


def _done_run(method="optimize", layer="blocks.1", image="sample:chelsea", depth=0.2, params=None, err=0.5):
    from invgui.core.session import Run

    res = Result(images=np.zeros((1, 8, 8, 3), np.float32), target=None, history={},
                 metrics={"representation_error": err, "seconds": 1.0},
                 record={"method": method, "resolved": {"relative_depth": depth}, "relative_depth": depth})
    return Run.of(method=method, model="m", layer=layer, image=image, params=params or {"seed": 0}, state="done",
               result=res, decoder="d.pt" if method == "decoder" else None)


def test_the_grid_never_merges_runs_that_share_a_cell():
    from invgui.core import compare

    a, b, c = _done_run(), _done_run(params={"seed": 1}), _done_run(layer="blocks.3", depth=0.5)
    g = compare.grid([a, b, c], "method", "layer")
    assert sorted(r.id for r in g.cells.values()) == sorted([a.id, b.id, c.id])        # all three shown
    assert g.cols == ["blocks.1", "blocks.1 (2)", "blocks.3"] and len(g.notes) == 1
    assert "2 runs share optimisation / blocks.1" in g.notes[0]


def test_the_depth_plot_joins_only_runs_that_differ_in_their_layer():
    from invgui.core import compare
    from invgui.core.session import Run

    runs = [_done_run(layer=f"l{d}", depth=d / 4) for d in range(3)]                     # one curve
    runs += [_done_run(layer=f"l{d}", depth=d / 4, image="sample:coffee") for d in range(2)]  # another image
    runs += [_done_run(layer=f"l{d}", depth=d / 4, params={"seed": 0, "tv_weight": 9.0})
             for d in range(2)]                                                          # another setting
    runs += [_done_run("decoder", layer=f"l{d}", depth=d / 4) for d in range(2)]
    series = compare.depth_series(runs, lambda r: r.result.metrics["representation_error"])
    assert sorted(len(v) for v in series.values()) == [2, 2, 2, 3]
    assert set(series) == {"optimisation · m · tv_weight 10.0 · chelsea", "optimisation · m · tv_weight 10.0 · coffee",
                           "optimisation · m · tv_weight 9.0 · chelsea", "decoder · m · chelsea"}  # what differs
    # Other seeds are replicates of the same setting: one curve, the mean with the lowest and highest.
    seeds = [_done_run(layer="l0", depth=0.0, params={"seed": s}, err=e) for s, e in ((0, 0.2), (1, 0.4), (2, 0.9))]
    series = compare.depth_series(seeds + runs[:3], lambda r: r.result.metrics["representation_error"])
    assert set(series) == {"optimisation · m"}
    (d, mean, lo, hi), *rest = series["optimisation · m"]
    assert d == 0.0 and len(rest) == 2 and (lo, hi) == (0.2, 0.9)
    # The whole image padded (fit) is another input than its centre square: another curve, and
    # not a duplicate for a sweep (seen in the Xvfb walk: a fit and a crop run were averaged).
    fit = [Run(request=r.request.replace(framing="fit"), state="done", result=r.result) for r in runs[:3]]
    series = compare.depth_series(runs[:3] + fit, lambda r: r.result.metrics["representation_error"])
    assert set(series) == {"optimisation · m · centre square", "optimisation · m · whole image, padded"}
    assert compare.new_runs(fit, runs[:3]) == (fit, 0)
    g = compare.grid([runs[0], fit[0], runs[1]])                   # columns say which input, not "(2)"
    assert g.cols == ["l0", "l0 (fit)", "l1"] and g.notes == []


@pytest.mark.numerics
def test_several_images_optimise_as_one_batch_with_one_result_each():
    """A request with several images (the CLI's, the API's) optimises them together: one Result
    per image, in order, each numbered in its record; the batch splits when its rows
    (images × restarts) exceed MAX_BATCH_ROWS, numbering across the parts."""
    from invgui.core.methods import base
    from invgui.core.request import results

    p = PRESETS.get("fast").__class__(iters=4, size=48, restarts=2, preview_every=2)
    req = RunRequest(model="hog", images=("sample:coffee", "sample:chelsea", "sample:astronaut"), params=p,
                     device="cpu")
    out = results(execute(req))
    assert [r.record["batch_index"] for r in out] == [0, 1, 2] and {r.record["batch"] for r in out} == {3}
    assert all(r.images.shape == (2, 48, 48, 3) and r.record["device"] == "cpu" for r in out)
    alone = final_result(execute(req.replace(images=("sample:chelsea",))))
    np.testing.assert_allclose(out[1].images, alone.images, atol=2e-3)
    old = base.MAX_BATCH_ROWS                   # where the batching rule lives (methods.base.batches)
    try:
        base.MAX_BATCH_ROWS = 4                     # two images of two restarts per batch: 2 batches
        events = list(execute(req))
    finally:
        base.MAX_BATCH_ROWS = old
    split = [e for e in events if isinstance(e, Result)]
    assert [r.record["batch_index"] for r in split] == [0, 1, 2]
    assert [r.record["batch_rows"] for r in split] == [4, 4, 2]
    assert {e.item for e in events if isinstance(e, Step)} == {0, 1, 2}
    assert any(isinstance(e, Status) and "batch 2 of 2" in e.message for e in events)
    np.testing.assert_allclose(split[2].images, out[2].images, atol=2e-3)


def test_runs_differing_in_image_or_subset_share_a_batch_and_others_do_not():
    from invgui.core.request import batch_key, execute_batch, results

    p = PRESETS.get("fast").__class__(iters=3, size=48)
    a = RunRequest(model="hog", images=("sample:coffee",), params=p, device="cpu")
    b = a.replace(images=("sample:chelsea",), params=p.__class__(iters=3, size=48, channels="0-3"))
    assert batch_key(a) == batch_key(b) is not None
    for other in (a.replace(params=p.__class__(iters=4, size=48)), a.replace(layer="x"),
                  a.replace(method="decoder"), a.replace(target_features="f.pt"), a.replace(model="dsift")):
        assert batch_key(other) != batch_key(a)
    out = results(execute_batch([a, b]))
    assert [r.record["params"]["channels"] for r in out] == ["", "0-3"]
    assert [r.record["batch_index"] for r in out] == [0, 1]
    with pytest.raises(RequestError, match="cannot share a batch"):
        list(execute_batch([a, a.replace(params=p.__class__(iters=4, size=48))]))


def test_depth_curves_keep_representations_apart_and_name_them_in_words():
    """Issue 27 §4: the legend read `rep_params {'cell': 8, 'orientations': 9}` and `rep_params None`."""
    import dataclasses

    from invgui.core import compare

    lite = [_done_run(layer=f"blocks.{d}", depth=d / 6) for d in (1, 3, 5)]
    hog = _done_run(layer="hog", depth=1.0)
    hog = dataclasses.replace(hog, request=hog.request.replace(model="hog", rep_params={"cell": 8, "orientations": 9}))
    series = compare.depth_series(lite + [hog], lambda r: r.result.metrics["representation_error"])
    assert set(series) == {"optimisation · m", "optimisation · hog (cell 8, orientations 9)"}
    assert len(series["optimisation · hog (cell 8, orientations 9)"]) == 1 and len(series["optimisation · m"]) == 3
    assert not any("None" in name or "{" in name for name in series)


def test_fit_frames_a_non_square_image_and_the_record_says_how(chelsea):
    """Issue 27 §8: RunRequest.framing="fit" pads the image to a square (grey bars) before the
    method sees it; the record describes the original image and the bars, not the framed square."""
    from invgui.core.images import PAD_GREY, frame, input_region, region_words
    from invgui.core.methods.optimize import PRESETS
    from invgui.core.request import RequestError, RunRequest, execute

    padded = frame(chelsea, "fit")
    assert padded.shape == (451, 451, 3) and frame(chelsea, "crop") is chelsea
    assert np.all(padded[:75] == PAD_GREY) and np.all(padded[-76:] == PAD_GREY)
    assert np.array_equal(padded[75:375], chelsea)
    assert input_region((300, 451), "fit")["padding"] == [0, 75, 0, 76]
    assert region_words((300, 451), "fit") == "; padded to 451×451 with grey bars"
    with pytest.raises(RequestError, match="framing 'pad'"):
        RunRequest(framing="pad").validate()
    p = dataclasses.replace(PRESETS.get("fast"), iters=1, size=64)
    results = {f: [e for e in execute(RunRequest(images=("sample:chelsea",), params=p, device="cpu", framing=f,
                                                 layer="blocks.1")) if isinstance(e, Result)][-1]
               for f in ("crop", "fit")}
    assert results["fit"].record["input_region"] == input_region((300, 451), "fit")
    assert results["crop"].record["input_region"] == input_region((300, 451), "crop")
    bar = round(64 * 75 / 451)
    assert np.abs(results["fit"].target[:bar - 1] - PAD_GREY).max() <= 1 / 255
    assert np.abs(results["crop"].target[:bar] - PAD_GREY).max() > 0.1
    # A batch of runs (a sweep) frames and describes each run's own image.
    from invgui.core.images import load_image
    from invgui.core.request import execute_batch

    a = RunRequest(images=("sample:chelsea",), params=p, device="cpu", layer="blocks.1")
    b = a.replace(images=("sample:coffee",), framing="fit")
    out = [e for e in execute_batch([a, b]) if isinstance(e, Result)]
    assert [r.record["input_region"] for r in out] == [input_region((300, 451), "crop"),
                                                       input_region(load_image("sample:coffee").shape, "fit")]


def test_sweep_batching_and_reuse_live_in_the_core():
    """Issue 28 §3: the window's sweep batching (which queued runs join a batch) and its cache of
    built representations and decoded images are core functions, the same for every caller."""
    from invgui.core.request import Reuse, execute_batch, take_batch

    p = PRESETS.get("fast").__class__(iters=3, size=48, restarts=2)
    a = RunRequest(model="hog", images=("sample:coffee",), params=p, device="cpu")
    others = [a.replace(images=("sample:chelsea",)), a.replace(layer="x"), a.replace(images=("sample:rocket",)),
              a.replace(method="decoder"), a.replace(images=("sample:camera",))]
    assert take_batch(a, others) == [0, 2, 4]                       # same key; not another layer or method
    assert take_batch(a, others, limit=6) == [0, 2]                 # rows: 3 runs × 2 restarts fit in 6
    assert take_batch(a.replace(method="decoder"), others) == []    # a decoder is one forward pass already
    reuse = Reuse()
    first = reuse.for_requests([a, others[0]], given={"sample:coffee": np.zeros((20, 20, 3), np.float32)})
    assert set(first["images"]) == {"sample:coffee", "sample:chelsea"} and first["images"]["sample:coffee"].sum() == 0
    again = reuse.for_requests([others[0]])
    assert again["rep"] is first["rep"] and again["images"]["sample:chelsea"] is first["images"]["sample:chelsea"]
    assert reuse.rep(a.replace(rep_params=(("cell", 4),))) is not first["rep"]     # another HOG
    results = [e for e in execute_batch([a, others[0]], **reuse.for_requests([a, others[0]])) if isinstance(e, Result)]
    assert [r.record["batch_index"] for r in results] == [0, 1]
