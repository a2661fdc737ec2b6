"""Issue 37 §1: `invgui evaluate` never loses, duplicates or mismatches a row — whatever happens to
its images folder, its results folder and the processes writing it."""

import dataclasses
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from eval_helpers import photos, plan

from invgui.cli import main
from invgui.core import evaluate as E
from invgui.core.files import save_png
from invgui.core.images import load_image


def rows(out: Path) -> list[dict]:
    return E.read_rows(out / "runs.csv")


def keys(rs) -> list[tuple]:
    return [(int(r["index"]), r["image"], r["layer"], r["method"]) for r in rs]


def stop_after(n):
    def tick(p):
        if p.done == n:
            raise KeyboardInterrupt
    return tick


# -- row identity --------------------------------------------------------------------------------

def test_an_image_added_or_made_readable_between_runs_is_refused_and_no_row_is_touched(tmp_path):
    """Before: the work list was recomputed over the new folder while the written rows kept their old
    indices — runs.csv ended with duplicate indices and the new runs' records and PNGs overwrote
    other runs' files."""
    data = photos(tmp_path / "data")
    (data / "zz-broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        E.run(plan(data), out, tick=stop_after(3))
    before = (out / "runs.csv").read_bytes(), sorted(p.name for p in (out / "records").iterdir())
    save_png(data / "aaa-new.png", load_image("sample:coins")[::8, ::8])           # sorts first
    with pytest.raises(E.EvaluateError, match=r"changed since this evaluation began \(1 added: aaa-new.png\)"):
        E.run(plan(data), out)
    (data / "aaa-new.png").unlink()
    save_png(data / "zz-broken.png", load_image("sample:coins")[::8, ::8])         # now readable
    with pytest.raises(E.EvaluateError, match=r"1 readable now \(unreadable then\): zz-broken.png"):
        E.run(plan(data), out)
    assert ((out / "runs.csv").read_bytes(), sorted(p.name for p in (out / "records").iterdir())) == before
    (data / "zz-broken.png").write_bytes(b"not a png")                            # as it was: it resumes
    prog = E.run(plan(data), out)
    assert prog.skipped == 3 and prog.done == 5
    got = rows(out)
    assert [int(r["index"]) for r in got] == list(range(8))                       # each run once, in order
    for r in got:                                                                 # every file is its own run's
        rec = json.loads((out / "records" / f"{int(r['index']):07d}.json").read_text())
        assert (rec["image"], rec["layer"], rec["method"]) == (r["image"], r["layer"], r["method"])


# -- a folder that is not an evaluation ----------------------------------------------------------

def test_a_non_empty_folder_that_is_not_an_evaluation_is_refused_and_left_as_it_was(tmp_path):
    """Before: `--out .` in a paper's folder replaced its summary.csv, images/… and records/…"""
    data = photos(tmp_path / "data", ("astronaut", "rocket"))
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "summary.csv").write_text("my table\n")
    with pytest.raises(E.EvaluateError, match=r"not an invgui evaluate results folder .* not empty \(summary.csv\)"):
        E.run(plan(data), paper)
    assert sorted(p.name for p in paper.iterdir()) == ["summary.csv"]
    assert (paper / "summary.csv").read_text() == "my table\n"
    assert main(["evaluate", "--layers", "blocks.5", "--methods", "decoder", "--data", str(data), "--out",
                 str(paper), "--size", "48", "-q"]) == 2
    assert sorted(p.name for p in paper.iterdir()) == ["summary.csv"]


# -- reading runs.csv ----------------------------------------------------------------------------

def test_names_with_line_breaks_survive_and_a_damaged_row_is_redone_alone(tmp_path):
    """Before: runs.csv was split with str.splitlines(): a quoted name holding \\n, \\r or U+2028 cut its
    row in two, and the first damaged line made the reader rewrite runs.csv without it and without
    every good row after it."""
    data = tmp_path / "data"
    photos(data, ("astronaut", "rocket", "camera"))
    for odd, name in (("a\nnew line", "astronaut"), ("b\rreturn", "rocket"), ("c\u2028sep", "camera")):
        (data / f"{name}.png").rename(data / f"{odd}.png")
    out = tmp_path / "out"
    E.run(plan(data, methods=("decoder",)), out)
    first = rows(out)
    assert len(first) == 3 and {Path(r["image"]).stem for r in first} == {"a\nnew line", "b\rreturn", "c\u2028sep"}
    # A hand edit damages the first row: that row alone is redone, the others stay as they were.
    text = (out / "runs.csv").read_bytes()                  # as bytes: read_text would turn "\r" into "\n"
    r0 = first[0]
    assert text.count(r0["psnr"].encode()) == 1
    (out / "runs.csv").write_bytes(text.replace(r0["psnr"].encode(), b"not-a-number"))
    (out / "summary.csv").unlink()
    lines = []
    prog = E.run(plan(data, methods=("decoder",)), out, say=lines.append)
    assert prog.done == 1 and prog.skipped == 2
    assert any("psnr 'not-a-number' is not a number" in line for line in lines)
    again = rows(out)
    assert keys(again) == keys(first)
    assert [r["distance"] for r in again[1:]] == [r["distance"] for r in first[1:]]      # untouched
    assert (out / "summary.csv").is_file()


def test_bytes_that_are_not_utf8_and_a_non_integer_index_are_damaged_rows_not_a_crash(tmp_path):
    data = photos(tmp_path / "data", ("astronaut", "rocket", "camera"))
    out = tmp_path / "out"
    E.run(plan(data, methods=("decoder",)), out)
    raw = (out / "runs.csv").read_bytes().split(b"\n")
    raw[1] = raw[1].replace(b",0.", b",\xff\xfe.", 1)                                    # not UTF-8, in a number
    raw[2] = b"1.5" + raw[2][1:]                                                         # index 1.5
    (out / "runs.csv").write_bytes(b"\n".join(raw))
    (out / "summary.csv").unlink()
    res = E.open_results(out)                                                            # the viewer: said, kept
    assert len(res.rows) == 1 and len(res.damaged) == 2 and "damaged" in res.describe()
    prog = E.run(plan(data, methods=("decoder",)), out)
    assert prog.done == 2 and [int(r["index"]) for r in rows(out)] == [0, 1, 2]


# -- a row is complete only when its files are ---------------------------------------------------

def test_a_row_whose_record_or_image_is_missing_is_redone(tmp_path):
    """Before: the row was flushed first; a write that failed after it (disk full) left a row
    without its files, and no rerun ever wrote them."""
    data = photos(tmp_path / "data", ("astronaut", "rocket"))
    out = tmp_path / "out"
    E.run(plan(data, methods=("decoder",)), out, save_images=True)
    (out / "records" / "0000001.json").unlink()
    (out / "images" / "0000000.png").unlink()
    prog = E.run(plan(data, methods=("decoder",)), out, save_images=True)
    assert prog.done == 2 and prog.skipped == 0
    assert (out / "records" / "0000001.json").is_file() and (out / "images" / "0000000.png").is_file()
    assert [int(r["index"]) for r in rows(out)] == [0, 1]


def test_a_failed_write_leaves_no_row_behind(tmp_path, monkeypatch):
    data = photos(tmp_path / "data", ("astronaut", "rocket"))
    out = tmp_path / "out"
    from invgui.core.evaluate import rows as written  # where a run's image is saved

    real = written.save_png

    def full(path, img):
        if Path(path).name == "0000001.png":
            raise OSError(28, "No space left on device")
        return real(path, img)
    monkeypatch.setattr(written, "save_png", full)
    with pytest.raises(E.EvaluateError, match=r"cannot write run 1's results \(No space left on device\): the rows "
                       "written so far are kept"):
        E.run(plan(data, methods=("decoder",)), out, save_images=True)
    assert [int(r["index"]) for r in E.read_rows(out / "runs.csv")] == [0]
    monkeypatch.setattr(written, "save_png", real)
    assert E.run(plan(data, methods=("decoder",)), out, save_images=True).done == 1


# -- locks and lost jobs -------------------------------------------------------------------------

def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_killed_mergers_lock_is_taken_at_once_and_a_live_ones_wait_is_said(tmp_path):
    """Before: a lock left by a merger killed with SIGKILL made the same command wait, silently,
    for ten minutes."""
    import socket
    import time

    lock = tmp_path / "merge.lock"
    lock.write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname(), "time": time.time()}))
    said = []
    t0 = time.monotonic()
    from invgui.core.evaluate.runner import _lock

    with _lock(lock, said.append):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert time.monotonic() - t0 < 5 and not said and not lock.exists()
    # A live holder (another thread of this process stands in for another process): waited for, said.
    with _lock(lock):
        done = []
        waiter = threading.Thread(target=lambda: _lock(lock, said.append).__enter__() and done.append(1))
        waiter.start()
        time.sleep(0.6)
        assert not done and said and f"merging in pid {os.getpid()}" in said[0]
    waiter.join(5)
    assert done


def test_a_torchrun_process_whose_launcher_is_gone_stops_instead_of_waiting(tmp_path, monkeypatch):
    """Before: killing torchrun left the workers in the end barrier for 39+ minutes, holding their
    memory.  Rank 0 now waits for the other ranks' rows on disk and stops when its launcher is gone."""
    data = photos(tmp_path / "data", ("astronaut", "rocket"))
    real, gone = os.getppid(), []
    # Reparented: another parent than the one at the start (not 1 — a test process that is itself
    # an orphan, started in the background from a shell that ended, has 1 from the start).
    monkeypatch.setattr(os, "getppid", lambda: real + 1 if gone else real)

    def tick(p):
        if p.done == p.total:
            gone.append(True)                       # the launcher is killed once rank 0's rows are done
    with pytest.raises(E.EvaluateError, match="torchrun launcher of this process is gone"):
        E.run(plan(data, methods=("decoder",)), tmp_path / "out", shard=0, shards=2, torchrun=True, tick=tick)
    assert len(E.read_rows(tmp_path / "out" / "runs.shard-0-of-2.csv")) == 1          # its rows are kept


# -- processes that start together ---------------------------------------------------------------

def test_processes_starting_together_agree_on_one_plan(tmp_path):
    """Before: every process wrote plan.json through one fixed name, plan.tmp; one renamed it first and
    the other failed ("No such file or directory: …/plan.tmp")."""
    out = tmp_path / "out"
    images = E.ImageSetRecord(("a.png", "b.png"))
    p = plan(tmp_path)
    errors, start = [], threading.Barrier(8)

    def one():
        start.wait()
        try:
            assert E.check_plan(p, out, images) == images
        except BaseException as e:  # noqa: BLE001 — collected and reported below
            errors.append(e)
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert json.loads((out / "plan.json").read_text())["image_set"]["readable"] == ["a.png", "b.png"]
    assert sorted(p.name for p in out.iterdir()) == ["plan.json"]                    # no temporaries left


# -- check before writing ------------------------------------------------------------------------

@pytest.mark.parametrize("args, said", [
    (["--iters", "-1"], "Iterations = -1 is below its minimum 1"),
    (["--size", "-5"], "--size -5"),
    (["--decoder", "blocks.5=/nowhere/dec.pt"], "/nowhere/dec.pt"),
    (["--limit", "-1"], "--limit -1"),
    (["--layers", ","], "no layers given"),
    (["--methods", ","], "no methods given"),
    (["--layers", "blocks.5,blocks.5"], "names blocks.5 twice"),
    (["--layers", "blocks.99"], "blocks.99"),
])
def test_a_bad_value_is_refused_before_anything_is_written(tmp_path, capsys, args, said):
    """Before: --iters -1, --size -5 or a missing decoder file were refused only when the first run was
    prepared, after plan.json was written (so the corrected command was then refused as 'other
    arguments'); --limit -1 dropped the last image; --layers , ran an empty evaluation."""
    data = photos(tmp_path / "data", ("astronaut", "rocket"))
    out = tmp_path / "out"
    base = {"--layers": "blocks.5", "--methods": "decoder,optimize", "--data": str(data), "--out": str(out),
            "--size": "48", "--iters": "2"}
    for k, v in zip(args[::2], args[1::2], strict=True):
        base[k] = v
    argv = ["evaluate", "-q"] + [x for kv in base.items() for x in kv]
    assert main(argv) == 2
    assert said in capsys.readouterr().err
    assert not out.exists()


# -- damaged results folders ---------------------------------------------------------------------

@pytest.mark.parametrize("content, said", [
    ("[]", "a JSON list, not an object"),
    ("5", "a JSON int, not an object"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    (b"\xff\xfe{", "not UTF-8"),
    ('{"model": "efficientnet_lite0", "layers": "blocks.5", "methods": ["decoder"], "data": "x"}', "'layers'"),
    ('{"model": "efficientnet_lite0", "layers": ["blocks.5"], "methods": ["decoder"], "data": "x", "limit": true}',
     "'limit'"),
])
def test_a_damaged_plan_is_refused_naming_the_file_and_field(tmp_path, content, said):
    """Before: `invgui: unexpected error` on a rerun, and opening the folder crashed the window."""
    out = tmp_path / "out"
    out.mkdir()
    path = out / "plan.json"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(E.EvaluateError, match="plan.json") as e:
        E.open_results(out)
    assert said in str(e.value)
    data = photos(tmp_path / "data", ("astronaut", "rocket"))
    with pytest.raises(E.EvaluateError, match="plan.json"):
        E.run(plan(data, methods=("decoder",)), out)


# -- every image format Pillow reads -------------------------------------------------------------

def test_webp_gif_and_ppm_photos_are_evaluated_and_other_files_are_said(tmp_path, capsys):
    """Before: the folder listing kept .png .jpg .jpeg .tif .tiff .bmp only: a folder of .webp photos
    evaluated 0 of 46 images and said '0 unreadable images skipped'."""
    from PIL import Image

    from invgui.core.images import to_uint8
    from invgui.core.methods.decoder import list_images

    data = tmp_path / "data"
    data.mkdir()
    for name, fmt in (("astronaut", "webp"), ("rocket", "gif"), ("camera", "ppm")):
        Image.fromarray(to_uint8(load_image(f"sample:{name}")[::8, ::8])).save(data / f"{name}.{fmt}")
    (data / "CREDITS.md").write_text("photos: scikit-image")
    assert [p.suffix for p in list_images(data)] == [".webp", ".ppm", ".gif"]       # sorted by name
    out = tmp_path / "out"
    assert main(["evaluate", "--layers", "blocks.5", "--methods", "decoder", "--data", str(data), "--out", str(out),
                 "--size", "48", "-q"]) == 0
    said = capsys.readouterr().out
    assert "3 runs computed" in said and "skipped 1 file: 1 not images by their names (CREDITS.md)" in said
    assert {Path(r["image"]).suffix for r in rows(out)} == {".webp", ".gif", ".ppm"}


# -- §4: methods compared like for like ----------------------------------------------------------

def test_every_method_of_an_evaluation_runs_at_one_side_and_shares_one_n(tmp_path):
    """Before: by default optimisation ran at 224 px and the shipped decoders at their own 128 px, so
    'methods on one layer' inverted 192×7×7 for one and 192×4×4 for the other and the summary
    divided by N = 141.7 for one and 59.5 for the other, side by side without a word."""
    data = photos(tmp_path / "data", ("astronaut", "rocket"))
    out = tmp_path / "out"
    E.run(plan(data, size=0, methods=("optimize", "decoder", "hybrid")), out)
    got = rows(out)
    assert len(got) == 6 and {int(r["side"]) for r in got} == {224}
    table = E.read_summary(out / "summary.csv")
    assert len({t["set_distance"] for t in table}) == 1
    records = [json.loads(p.read_text())["record"] for p in sorted((out / "records").glob("*.json"))]
    assert {r["input_size"] for r in records} == {224}


def test_a_results_folder_that_cannot_be_written_is_said_with_its_name(tmp_path, monkeypatch):
    """Before: the error named a temporary (or was bare errno text). Tested with a failing mkstemp:
    a read-only folder is writable by root, who runs CI."""
    import tempfile

    data = photos(tmp_path / "data", ("astronaut", "rocket"))

    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(tempfile, "mkstemp", full)
    with pytest.raises(E.EvaluateError, match=r"out: cannot write the results folder here \(No space left on device\)"):
        E.run(plan(data, methods=("decoder",)), tmp_path / "out")


@pytest.fixture(scope="module")
def fc_decoder(tmp_path_factory):
    """A decoder with a fully connected input (EfficientNet-Lite0's pooled vector), trained one tiny
    epoch at 64 px: it takes 64 px only."""
    from invgui.core import representations as R
    from invgui.core.methods import decoder as D

    root = tmp_path_factory.mktemp("fc")
    data = photos(root / "train", ("astronaut", "rocket", "camera", "coffee"))
    out = root / "pool.pt"
    p = D.TrainParams(epochs=1, batch=4, size=64, crops_per_image=1, width=0.05, held_out=0)
    for _ in D.train(R.get("efficientnet_lite0"), "global_pool", data, out, p):
        pass
    return out


def test_a_decoder_with_a_fully_connected_input_sets_the_side_of_every_method_or_refuses(tmp_path, fc_decoder):
    data = photos(tmp_path / "data", ("astronaut", "rocket"))
    p = plan(data, size=0, layers=("global_pool",), decoders={"global_pool": str(fc_decoder)})
    E.run(p, tmp_path / "out")
    assert {int(r["side"]) for r in rows(tmp_path / "out")} == {64}                  # optimisation too
    with pytest.raises(E.EvaluateError, match="takes 64 px only, so every method is compared at 64 px: give "
                                              "--size 64 or leave --size out"):
        E.run(dataclasses.replace(p, size=96), tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_evaluate_takes_a_device_like_the_other_commands(tmp_path, capsys):
    data = photos(tmp_path / "data", ("astronaut", "rocket"))
    base = ["evaluate", "--layers", "blocks.5", "--methods", "decoder", "--data", str(data), "--size", "48", "-q"]
    assert main(base + ["--out", str(tmp_path / "gpu"), "--device", "cuda:7"]) == 2
    assert "cuda:7" in capsys.readouterr().err and not (tmp_path / "gpu").exists()
    assert main(base + ["--out", str(tmp_path / "cpu"), "--device", "cpu"]) == 0
    assert {r["device"] for r in rows(tmp_path / "cpu")} == {"cpu"}
