"""Reliability (issue 10): bad sessions, parameters, files, training corner cases, exports and the
CLI's catch-all.  Each test names the point of the issue it covers.  Qt-free; small inputs."""

import contextlib
import dataclasses
import io
import json
import math
import os
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from invgui.cli import main
from invgui.core import features_io
from invgui.core import representations as R
from invgui.core.autosave import AutosaveStore, autosave_path, legacy_paths
from invgui.core.events import Result
from invgui.core.files import TMP_PREFIX, FileSet, atomic_write, save_png
from invgui.core.images import load_image
from invgui.core.methods import decoder as D
from invgui.core.methods.decoder import nets
from invgui.core.methods.optimize import OptimizeParams
from invgui.core.methods.probe import ProbeParams
from invgui.core.params import ParamError, check, field_type, from_dict
from invgui.core.session import Run, Session, SessionError

METRICS = {"start_representation_error": 1.0, "representation_error": 0.5, "iterations": 3,
           "iterations_per_second": 2.0, "seconds": 1.5}


def _result(n=1, side=8, seed=0):
    rng = np.random.default_rng(seed)
    return Result(images=rng.random((n, side, side, 3)).astype(np.float32),
                  target=rng.random((side, side, 3)).astype(np.float32), history={"total": [3.0, float("nan")]},
                  metrics={**METRICS, "representation_error": float("nan"), "psnr": 20.0},
                  record={"representation": "hog", "layer": "hog", "layer_shape": [31, 1, 1]},
                  deviation=rng.random((side, side)).astype(np.float32) if n > 1 else None)


def _session(tmp_path, name="s.invgui"):
    s = Session()
    a = s.add(Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"iters": 3}))
    a.result, a.state = _result(2), "done"
    s.add(Run.of(method="decoder", model="lbp", layer="lbp", image="x.png", decoder="d.pt"))
    return s.save(tmp_path / name)


def _rewrite(path, out, doc=None, arrays=None, raw_arrays=None):
    """A copy of session ``path`` with its JSON and/or arrays replaced."""
    with zipfile.ZipFile(path) as z:
        text, npz = z.read("session.json").decode(), z.read("arrays.npz")
    if doc is not None:
        text = doc if isinstance(doc, str) else json.dumps(doc)
    if arrays is not None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        npz = buf.getvalue()
    if raw_arrays is not None:
        npz = raw_arrays
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("session.json", text)
        z.writestr("arrays.npz", npz)
    return out


# -- 2. sessions ------------------------------------------------------------------------------------

def test_session_json_is_validated_with_member_and_reason(tmp_path):
    path = _session(tmp_path)
    doc = json.loads(zipfile.ZipFile(path).read("session.json"))
    t = Session.load(path)
    assert math.isnan(t.runs[0].result.metrics["representation_error"])      # NaN survives as NaN, not None
    assert t.runs[0].summary()                                               # and the run list can show it
    cases = [
        (lambda d: d.update(runs="nope"), "runs: expected a list"),
        (lambda d: d["runs"][0]["request"].pop("model"), "run 0: the required key 'model' is missing"),
        (lambda d: d["runs"][0]["request"].update(size="big"), "run 0 size: expected int"),
        (lambda d: d["runs"][0]["request"].update(size=10**9), "run 0 size"),
        (lambda d: d["runs"][1].update(state="exploded"), "run 1 state"),
        (lambda d: d["runs"][0]["request"].update(params={"lr": "fast"}), "run 0 params"),
        (lambda d: d["runs"][0]["request"].update(params={"iters": 0}), "below its minimum"),
        (lambda d: d["runs"][0]["result"].update(history={"total": ["a"]}), "history total"),
        (lambda d: d["runs"][0]["result"].update(metrics=[1, 2]), "result metrics"),
        (lambda d: d["runs"][0]["result"]["metrics"].update(seconds="1 s"), "result metrics seconds"),
        (lambda d: d["runs"][0]["result"]["record"].pop("layer"), "result record layer"),
        (lambda d: d["runs"][1].update(id=d["runs"][0]["id"]), "used by an earlier run"),
        (lambda d: d.update(invgui_session="1"), "invgui_session"),
        (lambda d: d["runs"][0].update(request=[1]), "run 0 request: expected an object"),
        (lambda d: d["runs"][0]["request"].update(images=["a", "b"]), "run 0 images: a run has one image"),
        (lambda d: d["runs"][0]["request"].update(images=[3]), "run 0 images: expected a list of texts"),
        (lambda d: d["runs"][1]["request"].update(params={"iters": 3}), "the decoder method takes none"),
        (lambda d: d["runs"][0]["request"].update(random_weights="yes"), "random_weights"),
        # Members the window reads, which validated and then raised in show_run (issue 26 §4):
        (lambda d: d["runs"][0]["result"]["record"].update(params=[1]), "result record params: expected dict"),
        (lambda d: d["runs"][0]["result"]["record"].update(resolved="x"), "result record resolved: expected dict"),
        # issue 37 §1b: null passed as "absent" and raised when the run was shown
        (lambda d: d["runs"][0]["result"]["record"].update(params=None),
         "result record params: expected dict, got null"),
        (lambda d: d["runs"][0]["result"]["record"].update(warnings="x"), "result record warnings: expected list"),
        (lambda d: d["runs"][0]["result"]["metrics"].update(psnr_std="wide"), "result metrics psnr_std"),
        (lambda d: d["runs"][0]["result"]["metrics"].update(ssim_std=[1]), "result metrics ssim_std"),
        (lambda d: d["runs"][0]["result"]["record"].update(batch="two"), "result record batch"),
        (lambda d: d["runs"][0]["result"]["metrics"].update(psnr_per_image=["a"]), "psnr_per_image"),
    ]
    for i, (change, message) in enumerate(cases):
        d = json.loads(json.dumps(doc))
        change(d)
        bad = _rewrite(path, tmp_path / f"bad{i}.invgui", doc=d)
        with pytest.raises(SessionError, match="session.json") as e:
            Session.load(bad)
        assert message in str(e.value) and str(bad) in str(e.value), (message, str(e.value))
    with pytest.raises(SessionError, match="not valid JSON"):
        Session.load(_rewrite(path, tmp_path / "text.invgui", doc="{not json"))


def test_session_arrays_are_checked_against_their_runs(tmp_path):
    path = _session(tmp_path)
    good = dict(np.load(io.BytesIO(zipfile.ZipFile(path).read("arrays.npz"))))
    cases = [
        ({**good, "0_images": np.zeros((2, 8, 8), np.float16)}, "expected 4 dimensions"),
        ({**good, "0_target": np.zeros((9, 8, 3), np.float16)}, "does not match the run's images"),
        ({**good, "0_deviation": np.zeros((8, 9), np.float16)}, "does not match"),
        ({**good, "7_images": np.zeros((1, 8, 8, 3), np.float16)}, "belongs to no run"),
        ({**good, "1_images": np.zeros((1, 8, 8, 3), np.float16)}, "has no result to hold it"),
        ({k: v for k, v in good.items() if k != "0_images"}, "has no images"),
        ({**good, "0_images": np.zeros((1, 8, 8, 3), np.int64)}, "pixel type"),
        ({**good, "0_images": np.full((1, 8, 8, 3), np.nan, np.float32)}, "NaN"),
    ]
    for i, (arrays, message) in enumerate(cases):
        with pytest.raises(SessionError, match="arrays.npz") as e:
            Session.load(_rewrite(path, tmp_path / f"a{i}.invgui", arrays=arrays))
        assert message in str(e.value), (message, str(e.value))


def test_small_session_files_cannot_ask_for_gigabytes(tmp_path):
    path = _session(tmp_path)
    # A deflate bomb: 300 MB of zeros as session.json packs into a few hundred KB.
    bomb = tmp_path / "bomb.invgui"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("session.json", b" " * (300 << 20))
        z.writestr("arrays.npz", b"")
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(SessionError, match="would expand to"):
        Session.load(bomb)
    # An .npy header that declares a 100000×4096×4096×3 array over a few bytes of data.
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f2", "fortran_order": False,
                                                  "shape": (100000, 4096, 4096, 3)})
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as z:
        z.writestr("0_images.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(SessionError, match="images in one run"):
        Session.load(_rewrite(path, tmp_path / "huge.invgui", raw_arrays=npz.getvalue()))
    npz = io.BytesIO()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f2", "fortran_order": False, "shape": (2, 8, 8, 3)})
    with zipfile.ZipFile(npz, "w") as z:
        z.writestr("0_images.npy", header.getvalue() + b"\0" * 64)           # shorter than its shape
    with pytest.raises(SessionError, match="bytes of data"):
        Session.load(_rewrite(path, tmp_path / "short.invgui", raw_arrays=npz.getvalue()))


def _done(name, seed=0):
    r = Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee", params={"iters": 3}, name=name)
    r.result, r.state = _result(2, seed=seed), "done"
    return r


def test_autosave_keeps_the_previous_index_and_a_bad_one_is_moved_aside(invgui_home):
    s = Session()
    s.add(_done("first"))
    AutosaveStore().write(s)
    index, previous = autosave_path(), autosave_path().with_name("session.previous.json")
    assert index.is_file() and not previous.exists()
    s.add(Run.of(method="optimize", model="hog", layer="hog", image="sample:coffee", name="second"))
    AutosaveStore().write(s)
    store = AutosaveStore()
    assert [r.name for r in store.read(previous)[0].runs] == ["first"]
    back = store.read(index)[0]
    assert [r.name for r in back.runs] == ["first", "second"]
    assert np.allclose(back.runs[0].result.images, s.runs[0].result.images, atol=2e-3)
    # A broken index: moved aside (kept, timestamped), the previous one is restored instead.
    index.write_bytes(b"garbage")
    found = AutosaveStore().recover()
    assert found.session is not None and [r.name for r in found.session.runs] == ["first"]
    assert found.session.runs[0].result is not None
    assert found.moved_to is not None and found.moved_to.read_bytes() == b"garbage"
    assert "could not be read" in found.message and str(found.moved_to) in found.message
    assert not index.exists()
    # Both broken: nothing restored, both moved aside, nothing raised.
    index.write_bytes(b"x")
    previous.write_bytes(b"y")
    found = AutosaveStore().recover()
    assert found.session is None and len(list(index.parent.glob("*broken*"))) == 3


def test_autosave_writes_each_result_once_and_removes_what_no_index_names(invgui_home, monkeypatch):
    """Issue 11 §4: an autosave of a long session writes the new results and a small index only."""
    saved = []
    real = Session.save
    monkeypatch.setattr(Session, "save", lambda self, path, remember=True: saved.append(Path(path).name)
                        or real(self, path, remember))
    store = AutosaveStore()
    s = Session()
    runs = [s.add(_done(f"r{i}", seed=i)) for i in range(3)]
    store.write(s)
    assert len(saved) == 3
    runs[1].name = "renamed"
    s.add(_done("r3", seed=3))
    store.write(s)
    assert len(saved) == 4                               # only the new result; the rename is in the index
    files = lambda: sorted(p.name for p in (autosave_path().parent / "runs").iterdir())  # noqa: E731
    assert len(files()) == 4
    s.remove(runs[0].id)
    store.write(s)
    assert len(files()) == 4                             # the previous index still names its file
    store.write(s)
    assert len(files()) == 3 and len(saved) == 4         # no index names it any more: removed
    # A window started later reads it back and does not write the results again.
    later = AutosaveStore()
    found = later.recover()
    assert [r.name for r in found.session.runs] == ["renamed", "r2", "r3"] and not found.message
    later.write(found.session)
    assert len(saved) == 4
    # A result file deleted behind the store's back is written again, not left missing.
    for p in (autosave_path().parent / "runs").iterdir():
        p.unlink()
    later.write(found.session)
    assert len(saved) == 7 and len(files()) == 3


def test_an_unreadable_result_file_costs_only_its_own_run(invgui_home):
    s = Session()
    s.add(_done("kept"))
    s.add(_done("damaged", seed=1))
    AutosaveStore().write(s)
    doc = json.loads(autosave_path().read_text())
    damaged = autosave_path().parent / doc["runs"][1]["result_file"]
    damaged.write_bytes(b"PK\x03\x04 broken")
    found = AutosaveStore().recover()
    kept, lost = found.session.runs
    assert kept.result is not None and lost.result is None and lost.state == "stopped"
    assert "could not be read" in lost.message and "damaged" in found.message
    aside = list(autosave_path().parent.glob("run-broken-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"PK\x03\x04 broken") and not damaged.exists()
    # A result file name that leaves the folder is refused, not followed.
    doc["runs"][0]["result_file"] = "../../etc/passwd.invgui"
    autosave_path().write_text(json.dumps(doc))
    with pytest.raises(SessionError, match="not a result file name"):
        AutosaveStore().read(autosave_path())


def test_an_autosave_of_an_older_invgui_is_still_restored(invgui_home):
    s = Session()
    s.add(_done("old"))
    legacy, _ = legacy_paths()
    legacy.parent.mkdir(parents=True)
    s.save(legacy, remember=False)
    found = AutosaveStore().recover()
    assert [r.name for r in found.session.runs] == ["old"] and found.session.runs[0].result is not None
    AutosaveStore().write(found.session)                        # from now on the incremental autosave is read
    legacy.write_bytes(b"stale")
    assert [r.name for r in AutosaveStore().recover().session.runs] == ["old"]


# -- 3. parameters ----------------------------------------------------------------------------------

def test_every_parameter_class_has_float_fields_to_check():
    assert all(any(field_type(c, f) is float for f in dataclasses.fields(c))
               for c in (OptimizeParams, D.TrainParams, ProbeParams))


def _param_classes():
    out = [OptimizeParams, D.TrainParams, ProbeParams]
    out += [e.presets.cls for e in R.REGISTRY.values() if e.presets is not None]
    return list(dict.fromkeys(out))


@pytest.mark.parametrize("cls", _param_classes(), ids=lambda c: f"{c.__module__.split('.')[-1]}.{c.__name__}")
def test_nan_and_inf_are_refused_for_every_float_parameter(cls):
    floats = [f for f in dataclasses.fields(cls) if field_type(cls, f) in (float, tuple[float, ...])]
    for f in floats:
        for bad in (float("nan"), float("inf"), float("-inf")):
            value = (bad,) if field_type(cls, f) is not float else bad
            with pytest.raises(ParamError, match=re.escape(f.metadata.get("label") or f.name)):
                check(dataclasses.replace(cls(), **{f.name: value}))
            with pytest.raises(ParamError):
                from_dict(cls, {f.name: value})
    for f in dataclasses.fields(cls):               # wrong types are refused too, not coerced silently
        if field_type(cls, f) in (int, float):
            with pytest.raises(ParamError):
                from_dict(cls, {f.name: "abc"})
            with pytest.raises(ParamError):
                from_dict(cls, {f.name: [1, 2]})


def test_representation_parameters_refuse_nan():
    with pytest.raises(R.RepresentationError, match="finite"):
        R.get("sift", params={"sigma": float("nan")})
    with pytest.raises(R.RepresentationError, match="finite"):
        R.get("dsift", params={"clip": "inf"})


@pytest.mark.parametrize("argv, message", [
    (["invert", "--lr", "nan"], "Learning rate = nan is not a finite number"),
    (["invert", "--tv-weight", "inf"], "is not a finite number"),
    (["invert", "--device", "gpu"], "use cpu, cuda, cuda:N or auto"),
    (["invert", "--device", "cuda:x"], "use cpu, cuda, cuda:N or auto"),
    (["invert", "--size", "8"], "outside 16…4096"),
    (["invert", "--size", "100000"], "above its maximum 4096"),
    (["invert", "--method", "decoder", "--model", "hog", "--size", "100000"], "above its maximum"),
    (["layers", "hog", "--size", "100000"], "outside 16…4096"),
    (["features", "--size", "100000", "-o", "{tmp}/f.pt"], "outside 16…4096"),
    (["features", "--model", "alexnet", "--random-weights", "--size", "20", "--layer", "conv5", "-o",
      "{tmp}/f.pt"], "does not fit"),
    (["probe", "--model", "hog", "--size", "200000", "-o", "{tmp}/p.png"], "outside 16…4096"),
    (["probe", "--model", "hog", "--count", "0", "-o", "{tmp}/p.png"], "Count = 0 is below its minimum 1"),
    (["probe", "--model", "hog", "--k", "0", "-o", "{tmp}/p.png"], "k = 0 is below its minimum"),
    (["probe", "--model", "hog", "--steps", "1", "-o", "{tmp}/p.png"], "Steps = 1 is below its minimum"),
    (["probe", "--model", "hog", "--alpha", "nan", "-o", "{tmp}/p.png"], "not a finite number"),
    (["probe", "--model", "hog", "--position", "a,b", "--probe", "neuron", "-o", "{tmp}/p.png"], "Position"),
    (["probe", "--model", "hog", "--optimize", "--iters", "0", "-o", "{tmp}/p.png"], "below its minimum"),
    (["probe", "--model", "hog", "--device", "tpu", "-o", "{tmp}/p.png"], "use cpu, cuda"),
    (["train-decoder", "--model", "hog", "--data", "{tmp}", "-o", "{tmp}/d.pt", "--lr", "nan"], "not a finite"),
    (["train-decoder", "--model", "hog", "--data", "{tmp}", "-o", "{tmp}/d.pt", "--width", "1e9"], "maximum"),
    # issue 26 §5: -1 ended in "unexpected error", 100000 started that many processes and hung.
    (["train-decoder", "--model", "hog", "--data", "{tmp}", "-o", "{tmp}/d.pt", "--workers", "-1"],
     "--workers -1: give 0"),
    (["train-decoder", "--model", "hog", "--data", "{tmp}", "-o", "{tmp}/d.pt", "--workers", "100000"],
     "the CPU cores this process may use"),
    (["gui", "--iters", "-1", "--screenshot", "{tmp}/s.png"], "--iters -1"),
    (["gui", "--iters", "0"], "below its minimum"),
    (["gui", "{tmp}/missing.png", "--screenshot", "{tmp}/s.png"], "no such file"),
    (["gui", "--screenshot", "{tmp}/no/such/s.png"], "does not exist"),
])
def test_every_cli_path_validates_its_parameters(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv + (["-q"] if argv[0] in ("invert",) else [])) == 2
    err = capsys.readouterr().err
    assert "invgui: error:" in err and message in err and "Traceback" not in err, err


# -- 4. files ---------------------------------------------------------------------------------------

def _tiny_decoder(path, **meta_changes):
    rep = R.get("hog")
    info = rep.layer_info("hog", 32)
    net = nets.build("two-stream", info.shape, info.stride, 0.05)
    meta = {"method": "decoder", **rep.describe(), "layer": "hog", "input_size": 32, "feature_shape": list(info.shape),
            "stride": info.stride, "architecture": "two-stream", "width": 0.05, "epochs": 1}
    meta.update(meta_changes)
    return D.save_checkpoint(path, net, meta)


def test_decoder_metadata_of_the_wrong_type_is_a_clear_error(tmp_path):
    assert D.load_checkpoint(_tiny_decoder(tmp_path / "ok.pt")).meta["width"] == 0.05
    cases = [({"width": "0.05"}, "meta['width']"), ({"width": 1e6}, "meta['width']"),
             ({"feature_shape": [31, 4, "4"]}, "feature_shape"), ({"feature_shape": [65536, 65536, 65536]},
                                                                 "feature_shape"),
             ({"stride": 2.5}, "stride"), ({"input_size": None}, "input_size"), ({"architecture": 3}, "architecture"),
             ({"architecture": "unet"}, "architecture"), ({"layer": ["hog"]}, "layer"),
             ({"held_out_normalised_error": "good"}, "held_out_normalised_error"), ({"training": 3}, "training"),
             ({"width": 0.1}, "do not fit its description"),
             # issue 26 §4: method and epochs were not checked
             ({"method": None}, "meta['method']"), ({"method": ["decoder"]}, "meta['method']"),
             ({"method": "optimize"}, "meta['method']"), ({"epochs": -1}, "meta['epochs']"),
             ({"epochs": None}, "meta['epochs']"), ({"epochs": [3]}, "meta['epochs']")]
    for i, (change, message) in enumerate(cases):
        path = _tiny_decoder(tmp_path / f"bad{i}.pt", **change)
        with pytest.raises(D.DecoderError, match="bad") as e:
            D.load_checkpoint(path)
        assert message in str(e.value) and str(path) in str(e.value), (change, str(e.value))
    # The state dict itself of the wrong kind.
    obj = torch.load(tmp_path / "ok.pt", weights_only=True)
    # NaN or infinite weights (a diverged training): refused, naming the tensor (issue 26 §4).
    name = next(k for k, v in obj["decoder"].items() if v.is_floating_point() and v.numel() > 3)
    for i, bad_value in enumerate((float("nan"), float("inf"))):
        weights = {k: v.clone() for k, v in obj["decoder"].items()}
        weights[name].view(-1)[:3] = bad_value
        torch.save({**obj, "decoder": weights}, tmp_path / f"nan{i}.pt")
        with pytest.raises(D.DecoderError, match=rf"decoder tensor '{re.escape(name)}' holds 3 NaN or infinite"):
            D.load_checkpoint(tmp_path / f"nan{i}.pt")
    for i, bad in enumerate([[1, 2], {"a": 1}, "weights"]):
        torch.save({**obj, "decoder": bad}, tmp_path / f"sd{i}.pt")
        with pytest.raises(D.DecoderError, match="state dict"):
            D.load_checkpoint(tmp_path / f"sd{i}.pt")


def test_feature_file_metadata_of_the_wrong_type_is_a_clear_error(tmp_path):
    good = {"features": torch.rand(31, 4, 4), "meta": {"representation": "hog", "layer": "hog", "input_size": 32}}
    for i, (obj, message) in enumerate([
        ({**good, "meta": [1]}, "meta should be a dict"),
        ({**good, "meta": {"layer": 3}}, "meta['layer']"),
        ({**good, "meta": {"input_size": "32"}}, "meta['input_size']"),
        ({**good, "meta": {"input_size": 10**7}}, "input_size"),
        ({**good, "features": torch.rand(1, 31, 4, 4)}, "without a batch"),
        ({**good, "features": torch.full((3,), float("nan"))}, "NaN"),
        ({**good, "features": torch.zeros(3, dtype=torch.bool)}, "expected numbers"),
    ]):
        torch.save(obj, tmp_path / f"f{i}.pt")
        with pytest.raises(features_io.FeatureFileError) as e:
            features_io.load(tmp_path / f"f{i}.pt")
        assert message in str(e.value) and f"f{i}.pt" in str(e.value), str(e.value)
    # A .npy whose header declares a huge array over a few bytes: refused from the header.
    with open(tmp_path / "huge.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (100000, 100000, 100)})
        f.write(b"\0" * 16)
    with pytest.raises(features_io.FeatureFileError, match="more than"):
        features_io.load(tmp_path / "huge.npy")


def test_torchscript_needs_explicit_trust_in_the_cli(tmp_path, capsys):
    import torch.nn as nn

    path = tmp_path / "seq.pt"
    torch.jit.script(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()).save(str(path))
    assert main(["layers", f"torchscript:{path}"]) == 2
    err = capsys.readouterr().err
    assert "arbitrary code" in err and "--trust-torchscript" in err
    assert main(["layers", f"torchscript:{path}", "--trust-torchscript"]) == 0
    assert "4×222×222" in capsys.readouterr().out


# -- 5. training ------------------------------------------------------------------------------------

def test_one_image_and_no_held_out_train_and_a_resume_keeps_the_architecture(tmp_path, capsys):
    folder = tmp_path / "one"
    folder.mkdir()
    save_png(folder / "a.png", load_image("sample:chelsea")[::6, ::6])
    common = ["train-decoder", "--model", "hog", "--data", str(folder), "--batch", "4", "--crops-per-image", "2", "-q"]
    out = tmp_path / "d.pt"
    assert main(common + ["--epochs", "1", "--size", "32", "--width", "0.05", "--out", str(out)]) == 0
    assert "no held-out images" in capsys.readouterr().out
    assert main(common + ["--epochs", "1", "--size", "32", "--width", "0.05", "--held-out", "0",
                          "--out", str(tmp_path / "e.pt")]) == 0
    # Resume with other width/size flags: the checkpoint's architecture is kept, and it stays loadable.
    assert main(common[:-1] + ["--epochs", "2", "--size", "48", "--width", "0.2", "--out", str(out),
                               "--resume", str(out)]) == 0
    err = capsys.readouterr().err
    assert "keeping the checkpoint's width 0.2 → 0.05, size 48 → 32" in err
    loaded = D.load_checkpoint(out)
    assert loaded.epoch == 2 and loaded.meta["width"] == 0.05 and loaded.meta["input_size"] == 32
    assert main(["invert", "--method", "decoder", "--model", "hog", "--decoder", str(out),
                 "-o", str(tmp_path / "r.png")]) == 0


# -- 6. exports -------------------------------------------------------------------------------------

def test_destinations_are_checked_before_anything_is_computed(tmp_path, capsys, monkeypatch):
    from invgui.core.methods import optimize

    def boom(*a, **k):
        raise AssertionError("the computation ran although its output cannot be written")

    monkeypatch.setattr(optimize, "run", boom)
    monkeypatch.setattr(D, "train", boom)
    monkeypatch.setattr(features_io, "compute", boom)
    targets = [tmp_path / "missing" / "x.png", tmp_path]          # no such folder; a folder, not a file
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if not os.access(ro, os.W_OK):                                 # root writes anywhere: not testable then
        targets.append(ro / "x.png")
    try:
        for out in targets:
            assert main(["invert", "--iters", "2", "-q", "--out", str(out)]) == 2
            assert main(["train-decoder", "--model", "hog", "--data", str(tmp_path), "-q", "--out", str(out)]) == 2
            assert main(["features", "--model", "hog", "-o", str(tmp_path / "f.pt"), "--picture", str(out)]) == 2
            err = capsys.readouterr().err
            assert err.count("invgui: error:") == 3 and ("cannot write" in err or "is a folder" in err), err
            assert "computation ran" not in err
    finally:
        ro.chmod(0o700)
    assert not (tmp_path / "f.pt").exists()


def test_a_multi_file_export_writes_the_whole_set_or_none(tmp_path):
    from invgui.core.export import export_result

    res = _result(n=3, side=16)
    res = dataclasses.replace(res, history={"total": [3.0, 2.0]}, metrics={"representation_error": 0.5})
    (tmp_path / "r-losses.csv").mkdir()            # one of the set's destinations cannot be written
    with pytest.raises(OSError):
        export_result(res, tmp_path / "r.png", tiff=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-losses.csv"], list(tmp_path.iterdir())
    (tmp_path / "r-losses.csv").rmdir()
    png, js = export_result(res, tmp_path / "r.png", tiff=True)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["r-1.png", "r-1.tif", "r-2.png", "r-2.tif", "r-deviation.png", "r-losses.csv", "r.json",
                     "r.png", "r.tif"], names


def test_a_failed_export_over_an_earlier_one_leaves_the_earlier_one_whole(tmp_path, monkeypatch):
    """Issue 26 §4: the set is renamed into place file by file; when a later rename fails (EXDEV,
    EACCES, ENOSPC in life), the files already replaced get their old versions back."""
    import errno

    from invgui.core.export import export_result

    first = dataclasses.replace(_result(n=2, side=16, seed=1), history={"total": [3.0, 2.0]},
                                metrics={"representation_error": 0.5})
    export_result(first, tmp_path / "r.png")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert "r.json" in before and "r.png" in before
    real = os.replace

    def failing(src, dst):
        if Path(dst).name == "r.json":
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    second = dataclasses.replace(_result(n=2, side=16, seed=2), history={"total": [5.0, 4.0]},
                                 metrics={"representation_error": 0.25})
    with pytest.raises(OSError, match="cross-device"):
        export_result(second, tmp_path / "r.png")
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before                       # every old file, as it was; no temporary left


def test_temporaries_are_removed_on_failure_and_stale_ones_swept(tmp_path):
    with pytest.raises(RuntimeError), FileSet():
        save_png(tmp_path / "a.png", np.zeros((16, 16, 3), np.float32))
        raise RuntimeError("killed mid-export")
    assert list(tmp_path.iterdir()) == []
    stale = tmp_path / f"{TMP_PREFIX}old-x.png"
    stale.write_bytes(b"half")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = tmp_path / f"{TMP_PREFIX}now-y.png"      # another process may be writing this one: left alone
    fresh.write_bytes(b"half")
    atomic_write(tmp_path / "b.txt", lambda t: Path(t).write_text("x"))
    assert not stale.exists() and fresh.exists() and (tmp_path / "b.txt").read_text() == "x"


# -- 7. the CLI's catch-all -------------------------------------------------------------------------

def test_unexpected_errors_print_one_line_and_a_traceback_only_with_debug(monkeypatch, capsys):
    import invgui.cli as cli

    def broken(args):
        raise TypeError("something nobody expected")

    monkeypatch.setattr(cli.layers, "run", broken)
    assert main(["layers", "hog"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["invgui: unexpected error: TypeError: something nobody expected (run again "
                                        "with --debug to see where it happened)"]
    assert main(["layers", "hog", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "something nobody expected" in err


def test_only_invguis_own_errors_are_reported_as_the_users_and_any_other_as_a_bug(monkeypatch, capsys):
    """Issue 28 §4: one error root. An InvguiError (any of invgui's errors: ImageError, ParamError,
    SessionError, …) is the user's to fix: `invgui: error:`, exit 2. A ValueError from deep inside a
    library is not: it was reported as the user's error before (checked), now as a bug, exit 1."""
    import invgui.cli as cli
    from invgui.core.errors import InvguiError
    from invgui.core.images import ImageError
    from invgui.core.methods.decoder import DecoderError
    from invgui.core.params import ParamError
    from invgui.core.session import SessionError

    for cls in (ImageError, ParamError, SessionError, DecoderError):
        assert issubclass(cls, InvguiError) and issubclass(cls, ValueError)      # old `except ValueError` hold
    for raised, code, line in ((ImageError("x.png: not an image"), 2, "invgui: error: x.png: not an image"),
                               (ValueError("math domain error"), 1, "invgui: unexpected error: ValueError: math "
                                "domain error (run again with --debug to see where it happened)")):
        def broken(args, raised=raised):
            raise raised

        monkeypatch.setattr(cli.layers, "run", broken)
        assert main(["layers", "hog"]) == code
        assert capsys.readouterr().err.strip() == line


# -- fuzz: malformed sessions, decoder checkpoints and feature files ----------------------------------

_ODD = [None, True, -1, 0, 2**40, 1e308, float("nan"), "", "x" * 70000, [], [1, [2, [3]]], {}, {"a": {"b": 1}},
        [None] * 5]


def _mutate(value, rng):
    """``value`` with one randomly chosen leaf or key changed: deleted, retyped or made huge."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = list(value)[rng.integers(len(value))]
        out = dict(value)
        if rng.random() < 0.25:
            del out[key]
        else:
            out[key] = _mutate(out[key], rng)
        return out
    if isinstance(value, list) and value and rng.random() < 0.8:
        out = list(value)
        i = int(rng.integers(len(out)))
        out[i] = _mutate(out[i], rng)
        return out
    return _ODD[int(rng.integers(len(_ODD)))]


def _json_safe(v):
    return json.loads(json.dumps(v, allow_nan=True))


def test_fuzz_malformed_files_raise_only_clear_errors(tmp_path):
    rng = np.random.default_rng(int(os.environ.get("INVGUI_FUZZ_SEED", "1234")))
    counts = {"session": 0, "decoder": 0, "features": 0}
    # Sessions: mutated JSON, mutated arrays, truncated and bit-flipped files.
    path = _session(tmp_path)
    doc = json.loads(zipfile.ZipFile(path).read("session.json"))
    arrays = dict(np.load(io.BytesIO(zipfile.ZipFile(path).read("arrays.npz"))))
    raw = path.read_bytes()
    for i in range(40):
        out = tmp_path / f"fz{i}.invgui"
        kind = i % 4
        if kind == 0:
            _rewrite(path, out, doc=json.dumps(_json_safe(_mutate(doc, rng))))
        elif kind == 1:
            key = list(arrays)[int(rng.integers(len(arrays)))]
            shape = tuple(int(s) for s in rng.integers(0, 12, size=int(rng.integers(0, 6))))
            dtype = [np.float16, np.float32, np.int8, np.float64, np.complex64][int(rng.integers(5))]
            _rewrite(path, out, arrays={**arrays, key: np.ones(shape, dtype)})
        elif kind == 2:
            out.write_bytes(raw[:int(rng.integers(len(raw)))])
        else:
            b = bytearray(raw)
            for _ in range(8):
                b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
            out.write_bytes(bytes(b))
        with contextlib.suppress(SessionError):
            Session.load(out)
        counts["session"] += 1
    # Decoder checkpoints: mutated metadata, odd state dicts, odd top-level values.
    ok = torch.load(_tiny_decoder(tmp_path / "ok.pt"), weights_only=True)
    for i in range(30):
        obj = dict(ok)
        choice = i % 3
        if choice == 0:
            obj["meta"] = _mutate(ok["meta"], rng)
        elif choice == 1:
            key = ["decoder", "encoder", "optimizer", "epoch", "invgui_decoder"][int(rng.integers(5))]
            m = _mutate(ok.get(key), rng)
            obj[key] = m if rng.random() < 0.5 else {"w": torch.zeros(int(rng.integers(1, 5)))}
        else:
            sd = dict(ok["decoder"])
            k = list(sd)[int(rng.integers(len(sd)))]
            sd[k] = torch.zeros(tuple(int(s) for s in rng.integers(1, 6, size=int(rng.integers(1, 4)))))
            obj["decoder"] = sd
        torch.save(obj, tmp_path / f"fd{i}.pt")
        with contextlib.suppress(D.DecoderError):
            D.load_checkpoint(tmp_path / f"fd{i}.pt")
        counts["decoder"] += 1
    # Feature files: odd metadata and tensors, .npy of odd shapes and types, junk bytes.
    for i in range(30):
        choice = i % 3
        if choice == 0:
            p = tmp_path / f"ff{i}.pt"
            torch.save({"features": torch.rand(4, 3, 3),
                        "meta": _mutate({"representation": "hog", "layer": "hog", "input_size": 32,
                                         "representation_params": {"cell": 8}}, rng)}, p)
        elif choice == 1:
            p = tmp_path / f"ff{i}.npy"
            shape = tuple(int(s) for s in rng.integers(0, 5, size=int(rng.integers(0, 6))))
            np.save(p, np.ones(shape, [np.float32, np.int16, np.bool_, np.complex64][int(rng.integers(4))]))
        else:
            p = tmp_path / f"ff{i}.pt"
            p.write_bytes(rng.bytes(int(rng.integers(0, 400))))
        try:
            ff = features_io.load(p)
            assert ff.features.dtype == torch.float32 and 1 <= ff.features.dim() <= 3
        except features_io.FeatureFileError:
            pass
        counts["features"] += 1
    assert sum(counts.values()) >= 100 and min(counts.values()) >= 30


# --- Autosave: two windows, and nothing recoverable swept away (issue 26 §4) ----------------------

def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid                      # reaped: no process has it (a reuse within the test is remote)


def test_each_window_autosaves_to_a_slot_it_locks_and_a_dead_owners_slot_is_taken_over(invgui_home):
    import socket

    from invgui.core.autosave import LOCK, claim, other_autosaves, slot_folder

    first, second = claim(), claim()                  # two windows of one process: two slots
    assert first.folder == autosave_path().parent and second.folder == slot_folder(2)
    a, b = Session(), Session()
    a.add(_done("a"))
    b.add(_done("b", seed=1))
    first.write(a)
    second.write(b)
    assert [r.name for r in AutosaveStore(first.folder).read(first.index)[0].runs] == ["a"]
    assert [r.name for r in AutosaveStore(second.folder).read(second.index)[0].runs] == ["b"]
    assert other_autosaves(first.folder) == []        # the second is held by a live window
    second.release()
    assert other_autosaves(first.folder) == [(second.folder, 1)]
    # The first window crashed: its lock names a process that is gone; the next window takes it over.
    (first.folder / LOCK).write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    third = claim()
    assert third.folder == first.folder and [r.name for r in third.recover().session.runs] == ["a"]
    # A lock of another machine (a shared home) is never taken over: its process cannot be checked.
    third.release()
    (first.folder / LOCK).write_text(json.dumps({"pid": _dead_pid(), "host": "elsewhere.example"}))
    assert claim().folder == slot_folder(2)


def test_an_autosave_index_with_an_inline_result_is_refused_and_the_previous_one_restored(invgui_home):
    """Issue 26 §4: a run record holding a result object (instead of a result_file) passed the
    index reader and became a Run whose result was a dict; showing it raised AttributeError."""
    store = AutosaveStore()
    s = Session()
    s.add(_done("a"))
    store.write(s)
    s.add(_done("b", seed=1))
    store.write(s)
    doc = json.loads(autosave_path().read_text())
    doc["runs"][1].pop("result_file")
    doc["runs"][1]["result"] = {"history": {}, "metrics": METRICS, "record": {"representation": "hog", "layer": "hog",
                                                                              "layer_shape": [31, 1, 1]}}
    autosave_path().write_text(json.dumps(doc))
    with pytest.raises(SessionError, match="run 1: holds a result object"):
        AutosaveStore().read(autosave_path())
    found = AutosaveStore().recover()
    assert [r.name for r in found.session.runs] == ["a"]
    assert "restored the autosave session.previous.json" in found.message
    assert all(isinstance(r.result, Result) for r in found.session.runs)


@pytest.mark.parametrize("broken", [b"garbage", None])
def test_results_only_a_broken_index_named_are_kept(invgui_home, broken):
    import os

    store = AutosaveStore()
    s = Session()
    s.add(_done("a"))
    store.write(s)                                   # index: a
    s.add(_done("c", seed=2))
    store.write(s)                                   # index: a, c; previous: a
    index = autosave_path()
    c_file = autosave_path().parent / json.loads(index.read_text())["runs"][1]["result_file"]
    # The newest index breaks: garbage, or cut short so that it is not JSON but still names c's file.
    index.write_bytes(broken if broken is not None else index.read_bytes()[:-20])
    week_old = time.time() - 7 * 24 * 3600
    os.utime(c_file, (week_old, week_old))
    later = AutosaveStore()
    found = later.recover()
    assert [r.name for r in found.session.runs] == ["a"]
    assert "1 result file(s) that only the unreadable index named are kept in" in found.message
    assert "File ▸ Open session" in found.message
    for _ in range(3):
        later.write(found.session)                   # autosaves after the restore sweep nothing of c
    assert c_file.is_file() and Session.load(c_file).runs[0].name == "c"
    assert later.unnamed() == [c_file]
    # What this store restored and no index names is still removed (after two autosaves), unless
    # the broken index names it too (the cut one names a's file as well).
    a_file = autosave_path().parent / json.loads(index.read_text())["runs"][0]["result_file"]
    found.session.runs.clear()
    later.write(found.session)
    later.write(found.session)
    left = {p.name for p in (autosave_path().parent / "runs").iterdir()}
    assert left == ({c_file.name} if broken else {a_file.name, c_file.name})


@pytest.mark.slow
def test_a_checkpoint_that_cannot_be_written_is_said_so_and_the_previous_one_kept(tmp_path, capsys):
    """Issue 26 §5: a write past the file-size limit (or a full disk) ended in "unexpected error:
    RuntimeError: [enforce fail …]"."""
    import resource
    import subprocess
    import sys

    folder = tmp_path / "one"
    folder.mkdir()
    save_png(folder / "a.png", load_image("sample:chelsea")[::6, ::6])
    out = tmp_path / "d.pt"
    common = ["train-decoder", "--model", "hog", "--data", str(folder), "--batch", "4", "--crops-per-image", "2",
              "-q", "--size", "32", "--width", "0.05", "--out", str(out)]
    assert main(common + ["--epochs", "1"]) == 0
    before = out.read_bytes()
    limit = len(before) // 2                    # the resumed checkpoint (with its optimiser) is larger

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "invgui", *common, "--epochs", "2", "--resume", str(out)],
                          preexec_fn=small_files, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"invgui: error: could not write {out}: file too large or disk full" in done.stderr
    assert "the previous checkpoint, if any, is kept" in done.stderr and "unexpected error" not in done.stderr
    assert out.read_bytes() == before and D.load_checkpoint(out).epoch == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".invgui-partial")]
