"""Issue 37 §2: a run that fails quietly says so — in its record, the run list, the result panel,
the CLI's last line and the evaluation's rows — and a run that ends well is not flagged."""

import dataclasses
import json

import numpy as np
from eval_helpers import COLLAPSE, GOOD

from invgui.core.events import Result
from invgui.core.request import RunRequest, execute, results
from invgui.core.results import FLAT_STD, assess, summary


def result(images=None, start=0.9, end=0.5, total=None, objective="invert") -> Result:
    rng = np.random.default_rng(0)
    images = rng.random((1, 16, 16, 3), dtype=np.float32) if images is None else images
    history = {"total": list(total) if total is not None else list(np.linspace(2.0, 1.0, 50))}
    return Result(images=images, target=None, history=history,
                  metrics={"start_representation_error": start, "representation_error": end},
                  record={"method": "optimize", "params": {"objective": objective}})


def test_each_quiet_failure_is_named_and_a_good_run_has_none():
    assert assess(result()) == []
    assert assess(result(start=1.251, end=1.301)) == ["representation error rose (1.251 → 1.301)"]
    assert assess(result(start=0.5, end=0.9, objective="maximize")) == []     # not what that objective minimises
    red = np.zeros((1, 16, 16, 3), np.float32)
    red[..., 0] = 1.0                                                         # the solid red square of issue 37
    assert assess(result(images=red)) == ["image is flat: one colour, nothing of the photo"]
    # Nearly flat: a variation under two grey levels; just above it is an image.
    ramp = np.broadcast_to(np.linspace(0.5, 0.5 + FLAT_STD * 1.7, 16, dtype=np.float32)[:, None, None],
                           (16, 16, 3))[None]
    assert "image is flat" in assess(result(images=ramp))[0]
    assert assess(result(images=np.ascontiguousarray(ramp) * 3 - 1.0)) == []
    two = np.stack([result().images[0], red[0]])
    assert assess(result(images=two)) == ["image is flat (restart 2 of 2): one colour, nothing of the photo"]
    rising = list(np.linspace(2.0, 1.0, 40)) + list(np.linspace(1.0, 1.5, 10))
    # the mean of the last 5 iterations against the 5 before them
    before, last = np.mean(rising[-10:-5]), np.mean(rising[-5:])
    assert assess(result(total=rising)) == [f"loss rose over the last 5 iterations ({before:.3g} → {last:.3g})"]
    noisy = list(np.linspace(2.0, 1.0, 50) + np.random.default_rng(1).normal(0, 0.01, 50))
    assert assess(result(total=noisy)) == []
    nan = np.full((1, 16, 16, 3), np.nan, np.float32)
    assert "image is flat" in assess(result(images=nan))[0]


def test_a_collapsed_run_is_flagged_in_its_record_and_summaries_and_a_good_one_is_not(collapsed):
    said = collapsed.record["warnings"]
    assert any(w.startswith("representation error rose") for w in said)
    assert summary(collapsed, "short").startswith("⚠ representation error rose")
    assert "WARNING: representation error rose" in summary(collapsed, "line")
    assert "⚠ representation error rose" in summary(collapsed, "html")
    assert summary(collapsed, "caption").startswith("⚠")
    good = results(execute(RunRequest(layer="blocks.1", params=GOOD)))[0]
    assert good.record["warnings"] == [] and "⚠" not in summary(good, "short") + summary(good, "line")


def test_the_cli_says_so_on_its_last_line(tmp_path, capsys):
    from invgui.cli import main

    out = tmp_path / "x.png"
    assert main(["invert", "--layer", "blocks.1", "--preset", "dip", "--lr", "1", "--iters", "30", "--size", "64",
                 "--restarts", "1", "--out", str(out), "-q"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("WARNING: this run failed quietly — representation error rose")
    assert any("representation error rose" in w for w in json.loads(out.with_suffix(".json").read_text())["warnings"])


def test_an_evaluation_row_carries_the_warnings(tmp_path):
    from invgui.core import evaluate as E
    from invgui.core.files import save_png
    from invgui.core.images import load_image

    data = tmp_path / "data"
    data.mkdir()
    for name in ("astronaut", "rocket"):
        save_png(data / f"{name}.png", load_image(f"sample:{name}")[::8, ::8])
    plan = E.Plan.of(model="efficientnet_lite0", layers=("blocks.1",), methods=("optimize",), data=str(data),
                  params=dataclasses.asdict(COLLAPSE), size=64)
    E.run(plan, tmp_path / "out")
    rows = E.read_rows(tmp_path / "out" / "runs.csv")
    assert len(rows) == 2 and all("representation error rose" in r["warnings"] for r in rows)
