"""The hybrid method (issue 15): the decoder's reconstruction starts the optimisation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from invgui.cli import main
from invgui.core.methods.optimize import PRESETS
from invgui.core.request import RunRequest, execute, prepare, results
from invgui.core.session import Run, Session

FAST = dataclasses.replace(PRESETS.get("fast"), iters=40)


def hybrid(decoder, images=("sample:coffee",), **params):
    req = RunRequest(method="hybrid", model="hog", images=images, decoder=str(decoder), device="cpu",
                     params=dataclasses.replace(FAST, **params))
    return results(execute(req))


@pytest.mark.numerics
def test_restart_one_starts_at_the_decoder_output_and_improves_on_it(tiny_hog_decoder):
    (res,) = hybrid(tiny_hog_decoder, restarts=1)
    stage = res.record["decoder_stage"]
    assert res.record["method"] == "hybrid" and res.record["decoder"] == str(tiny_hog_decoder)
    assert res.start.shape == res.images[0].shape == (32, 32, 3)
    # The optimisation's first iterate is the decoder's reconstruction: the same features.
    assert res.metrics["start_representation_error"] == pytest.approx(stage["representation_error"], abs=1e-4)
    assert res.metrics["decoder_representation_error"] == pytest.approx(stage["representation_error"])
    assert res.metrics["representation_error"] < 0.8 * stage["representation_error"]
    assert {"psnr", "ssim", "seconds"} <= set(stage)


def test_restarts_add_noise_to_the_decoder_output_and_images_batch(tiny_hog_decoder):
    a, b = hybrid(tiny_hog_decoder, images=("sample:coffee", "sample:chelsea"), restarts=2, iters=5)
    assert len(a.images) == 2 and a.deviation is not None and a.deviation.max() > 0
    assert a.record["batch"] == 2 and b.record["batch_index"] == 1
    assert not np.array_equal(a.start, b.start)
    assert a.record["decoder_stage"]["representation_error"] != b.record["decoder_stage"]["representation_error"]


def test_non_differentiable_representations_are_refused_with_a_reason(tiny_hog_decoder):
    from invgui.core.representations import RepresentationError

    with pytest.raises(RepresentationError, match="hybrid method optimises after the decoder"):
        prepare(RunRequest(method="hybrid", model="lbp", device="cpu"))


def test_cli_writes_both_stages(tiny_hog_decoder, tmp_path, capsys):
    out = tmp_path / "h.png"
    assert main(["invert", "sample:coffee", "--model", "hog", "--method", "hybrid", "--decoder",
                 str(tiny_hog_decoder), "--preset", "fast", "--iters", "10", "--out", str(out), "-q"]) == 0
    said = capsys.readouterr().out
    assert "hybrid: representation error" in said and "(decoder)" in said
    assert (tmp_path / "h-start.png").is_file()
    rec = json.loads((tmp_path / "h.json").read_text())
    assert rec["method"] == "hybrid" and rec["start_image"].endswith("h-start.png")
    assert rec["decoder_stage"]["representation_error"] > 0 and rec["decoder_sha256"]


def test_sessions_keep_the_hybrid_run_and_its_start_image(tiny_hog_decoder, tmp_path):
    (res,) = hybrid(tiny_hog_decoder, iters=5)
    run = Run.of(method="hybrid", model="hog", layer="hog", image="sample:coffee", params=dataclasses.asdict(FAST),
              decoder=str(tiny_hog_decoder), state="done", result=res)
    Session(runs=[run]).save(tmp_path / "s.invgui")
    (back,) = Session.load(tmp_path / "s.invgui").runs
    assert back.method == "hybrid" and back.result.start.shape == (32, 32, 3)
    assert np.allclose(back.result.start, res.start, atol=1e-3)
    req = back.request.replace(device="cpu")
    assert req.method == "hybrid" and req.params.iters == FAST.iters and req.decoder == str(tiny_hog_decoder)


def test_sweeps_make_hybrid_runs_where_a_decoder_fits(tiny_hog_decoder):
    from invgui.core import compare as C

    template = Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee",
                      params=dataclasses.asdict(FAST))
    runs = C.sweep_layers(template, ["optimize", "hybrid"], ["hog"], {"hog": str(tiny_hog_decoder)})
    assert [(r.method, r.decoder) for r in runs] == [("optimize", None), ("hybrid", str(tiny_hog_decoder))]
    assert C.sweep_layers(template, ["hybrid"], ["hog"], {}) == []                  # no decoder: no run
    imgs = C.sweep_images(template, ["hybrid"], ["sample:coffee", "sample:rocket"], str(tiny_hog_decoder))
    assert [r.method for r in imgs] == ["hybrid", "hybrid"] and C.axis_value(imgs[0], "method") == "hybrid"
    assert imgs[0].params == template.params                 # the optimisation stage's parameters


def test_a_grayscale_representation_keeps_the_decoders_colour(tiny_hog_decoder):
    # HOG sees luminance only: optimisation from noise is gray, the hybrid keeps the colour the
    # decoder predicted and changes what the features see.
    (res,) = hybrid(tiny_hog_decoder, iters=20)
    chroma = lambda im: float(np.abs(im - im.mean(axis=2, keepdims=True)).mean())  # noqa: E731
    assert chroma(res.start) > 1e-3 and chroma(res.image) > 0.5 * chroma(res.start)
    (plain,) = results(execute(RunRequest(model="hog", images=("sample:coffee",), device="cpu",
                                          params=dataclasses.replace(FAST, iters=5, size=32))))
    assert chroma(plain.image) < 1e-6


def test_a_grayscale_representation_can_be_reconstructed_in_gray_and_the_panel_says_whose_colour(tiny_hog_decoder):
    """Issue 27 §8: the hybrid of a gray representation inherits the decoder's guessed tint; gray
    output is offered, and the result says the colour is the decoder's guess."""
    from invgui.core.results import summary

    chroma = lambda im: float(np.abs(im - im.mean(axis=2, keepdims=True)).mean())  # noqa: E731
    (kept,) = hybrid(tiny_hog_decoder, iters=5, restarts=2)
    assert "decoder's guess" in kept.record["resolved"]["colour"] and "colour: the decoder's guess" in summary(
        kept, "html")
    (gray,) = hybrid(tiny_hog_decoder, iters=5, restarts=2, hybrid_colour="gray")
    assert chroma(gray.images[0]) < 1e-6 and chroma(gray.images[1]) < 1e-6
    assert gray.record["resolved"]["colour"].startswith("gray")
    # Restart 1 starts at the decoder's output in the representation's own luminance: its features.
    assert gray.metrics["start_representation_error"] == pytest.approx(gray.metrics["decoder_representation_error"],
                                                                       abs=0.05)


def test_adam_steps_from_the_decoder_output_are_scaled_by_the_hybrid_lr_factor(tiny_hog_decoder):
    """Issue 40 §3: Adam's first step moves every value by ±lr whatever the gradient, so from the
    decoder's reconstruction the preset's noise-start rate threw away what the decoder got right
    (the hybrid lost to its own decoder on image error); the hybrid scales it by ``hybrid_lr``."""
    def first_step(factor):
        (res,) = hybrid(tiny_hog_decoder, iters=1, restarts=1, optimizer="adam", lr=0.2, hybrid_lr=factor,
                        lr_milestones=())
        assert res.record["resolved"]["hybrid_lr"] == factor
        return float(np.median(np.abs(res.images[0].astype(np.float64) - res.start.astype(np.float64))))

    # Each value moves by exactly lr × factor σ (Adam's first step is lr·g/(|g| + 1e-8)); clamping
    # to [0, 1] can only shorten the larger steps, so the ratio of the median moves is 0.25 or a
    # little more, never 1 as before.
    ratio = first_step(0.25) / first_step(1.0)
    assert 0.2 < ratio < 0.35
