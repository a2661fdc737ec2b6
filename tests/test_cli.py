import json
import os
import subprocess
import sys

import numpy as np
import pytest

from invgui.cli import main
from invgui.core.images import load_image


def test_layers_prints_tree_with_shapes(capsys):
    assert main(["layers", "efficientnet_lite0"]) == 0
    out = capsys.readouterr().out
    assert "blocks.3" in out and "80×14×14" in out and "Conv2dSame" in out


@pytest.mark.slow
def test_layers_alexnet_without_weights_still_prints_shapes(capsys, no_hub):
    assert main(["layers", "alexnet", "--size", "227"]) == 0
    cap = capsys.readouterr()
    assert "features.10 (conv5)" in cap.out and "256×13×13" in cap.out
    assert "alexnet-owt-7be5be79.pth" in cap.err


def test_invert_writes_png_and_full_json(tmp_path, capsys):
    out = tmp_path / "r.png"
    code = main(["invert", "sample:coffee", "--layer", "blocks.1", "--iters", "6", "--size", "64",
                 "--seed", "3", "--out", str(out), "--quiet"])
    assert code == 0
    img = load_image(out)
    assert img.shape == (64, 64, 3)
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["representation"] == "efficientnet_lite0" and rec["layer"] == "blocks.1"
    assert rec["params"]["iters"] == 6 and rec["params"]["seed"] == 3 and rec["params"]["size"] == 64
    assert set(rec["params"]) >= {"lr", "momentum", "alpha", "beta", "alpha_weight", "tv_weight", "sigma"}
    assert len(rec["losses"]["total"]) == 6 and len(rec["losses"]["tv"]) == 6
    for k in ("representation_error", "psnr", "ssim"):
        assert isinstance(rec["metrics"][k], float)
    assert rec["versions"]["torch"] and rec["versions"]["invgui"]
    assert "representation error" in capsys.readouterr().out


def test_invert_metrics_path_and_bad_inputs(tmp_path, capsys):
    js = tmp_path / "m.json"
    assert main(["invert", "--iters", "2", "--size", "64", "--out", str(tmp_path / "x.png"),
                 "--metrics", str(js), "-q"]) == 0
    assert js.exists()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8garbage")
    assert main(["invert", str(bad), "-q"]) == 2
    assert "bad.jpg" in capsys.readouterr().err
    assert main(["invert", "--layer", "nope", "-q"]) == 2
    assert "no layer 'nope'" in capsys.readouterr().err
    assert main(["invert", "--iters", "2", "--size", "64", "-q", "--out", str(tmp_path / "no" / "x.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "invgui", "layers", "alexnet", "--depth", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "classifier" in out.stdout


@pytest.mark.slow
@pytest.mark.gui
def test_gui_screenshot_mode(tmp_path, invgui_home):
    """Without a display (none set here) the screenshot is taken offscreen."""
    shot = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run([sys.executable, "-m", "invgui", "gui", "--screenshot", str(shot), "--iters", "3"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    img = load_image(shot)
    assert img.shape[0] > 400 and img.shape[1] > 600 and np.std(img) > 0.05
    assert not list(invgui_home.glob("autosave*")), "a screenshot run wrote the user's autosave"
    out = subprocess.run([sys.executable, "-m", "invgui", "gui", "--layer", "no.such.layer", "--screenshot",
                          str(tmp_path / "x.png")], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 2 and "no.such.layer" in out.stderr and not (tmp_path / "x.png").exists()


def test_invert_several_images_optimises_them_in_one_batch(tmp_path, capsys):
    """Several images: one batch (each image's restarts together), one PNG + JSON per image in the
    folder --out, each record numbered; names that would collide and a file as --out are refused."""
    folder = tmp_path / "many"
    assert main(["invert", "sample:coffee", "sample:chelsea", "--model", "hog", "--iters", "3", "--size", "48",
                 "--restarts", "2", "--out", str(folder), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "sample:coffee: representation error" in out and "2 images optimised in batches" in out
    recs = [json.loads((folder / f"{n}_hog_hog.json").read_text()) for n in ("coffee", "chelsea")]
    assert [r["batch_index"] for r in recs] == [0, 1] and all(r["batch"] == 2 for r in recs)
    assert [r["image"] for r in recs] == ["sample:coffee", "sample:chelsea"]
    assert load_image(folder / "chelsea_hog_hog.png").shape == (48, 48, 3)
    assert (folder / "chelsea_hog_hog-1.png").exists() and (folder / "chelsea_hog_hog-deviation.png").exists()
    from invgui.core.files import save_png

    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        save_png(tmp_path / d / "x.png", np.full((32, 32, 3), 0.5, np.float32))
    assert main(["invert", str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"), "--model", "hog",
                 "--iters", "1", "--out", str(tmp_path / "c")]) == 2
    assert "same file" in capsys.readouterr().err
    assert main(["invert", "sample:coffee", "sample:chelsea", "--model", "hog", "--iters", "1",
                 "--out", str(tmp_path / "one.png")]) == 2
    assert "--out is a folder" in capsys.readouterr().err


# --- Ctrl-C keeps the reconstruction reached so far (issue 26 §5) ----------------------------------

def _invert_and_signal(tmp_path, signals, sig):
    """Start `invgui invert` with far too many iterations, send ``signals`` × ``sig`` once it
    iterates, and return the finished process."""
    import signal as S
    import time

    out = tmp_path / "r.png"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "invgui", "invert", "sample:coffee", "--model", "hog", "--size", "64",
                          "--iters", "100000", "--preview-every", "5", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    err = ""
    deadline = time.monotonic() + 120
    while "it/s" not in err and " it]" not in err and "/100000" not in err and time.monotonic() < deadline:
        err += p.stderr.read(1) or ""
        if p.poll() is not None:
            break
    assert p.poll() is None, err
    for _ in range(signals):
        p.send_signal(getattr(S, sig))
        time.sleep(0.3)
    stdout, rest = p.communicate(timeout=120)
    return p.returncode, out, stdout, err + rest


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_one_interrupt_writes_the_reconstruction_marked_stopped(tmp_path, sig):
    code, out, stdout, err = _invert_and_signal(tmp_path, 1, sig)
    assert code == 130, err[-2000:]
    assert out.is_file() and load_image(out).shape == (64, 64, 3), err[-2000:]
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["stopped"] is True and "stopped by the user after" in rec["message"]
    assert 0 < rec["metrics"]["iterations"] < 100000 and len(rec["losses"]["total"]) == rec["metrics"]["iterations"]
    assert "the result reached so far was written" in err and "Traceback" not in err


def test_a_second_interrupt_quits_without_writing(tmp_path, monkeypatch, capsys):
    # In this process, so that the two signals arrive at known points of the run (two signals sent
    # to a child in a row may reach it as one, or after it has written).
    import signal as S

    import invgui.core.request as request

    real = request.run_prepared

    def interrupted_twice(prep, should_stop=None, **kw):
        for i, ev in enumerate(real(prep, should_stop=should_stop, **kw)):
            if i == 5:
                os.kill(os.getpid(), S.SIGINT)          # the first: stop after this iteration …
                assert should_stop()
                os.kill(os.getpid(), S.SIGINT)          # … the second: quit now
            yield ev

    monkeypatch.setattr(request, "run_prepared", interrupted_twice)
    out = tmp_path / "r.png"
    code = main(["invert", "sample:coffee", "--model", "hog", "--size", "64", "--iters", "100000",
                 "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 130 and "invgui: interrupted" in err and "Traceback" not in err
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".invgui-partial")]
    assert S.getsignal(S.SIGINT) is S.default_int_handler               # the handlers are put back


def test_help_names_values_by_kind_not_by_destination(capsys):
    """Issue 26 §6: `--epochs PARAM_EPOCHS` → `--epochs N` (X for numbers, LIST for lists)."""
    for command in ("invert", "train-decoder", "probe"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "PARAM_" not in text, command
    with pytest.raises(SystemExit):
        main(["train-decoder", "--help"])
    text = capsys.readouterr().out
    assert "--epochs N" in text and "--lr X" in text
    with pytest.raises(SystemExit):
        main(["invert", "--help"])
    assert "--lr-milestones LIST" in capsys.readouterr().out


def test_decoder_on_a_default_layer_without_one_takes_the_nearest_shipped_one_and_says_so(tmp_path, capsys):
    """Issue 27 §8: `invgui invert --method decoder` on the default model and layer failed: no
    decoder shipped for blocks.3.  One does since issue 40; DINOv2's default layer (blocks.5) has
    none (its decoders are at blocks.2 and blocks.11)."""
    out = tmp_path / "d.png"
    assert main(["invert", "sample:coffee", "--method", "decoder", "--out", str(out), "-q"]) == 0
    assert "no decoder ships" not in capsys.readouterr().err
    assert json.loads(out.with_suffix(".json").read_text())["layer"] == "blocks.3"
    assert main(["invert", "sample:coffee", "--model", "dinov2_vits14", "--method", "decoder", "--out", str(out),
                 "-q"]) == 0
    err = capsys.readouterr().err
    assert "no decoder ships for dinov2_vits14 blocks.5 (the default layer): using the shipped one for blocks.2" in err
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["layer"] == "blocks.2" and rec["method"] == "decoder"
    # A layer asked for by name is not replaced: refused as before, saying what to do.
    assert main(["invert", "sample:coffee", "--method", "decoder", "--layer", "blocks.4", "--out", str(out), "-q"]) == 2
    assert "no decoder shipped for efficientnet_lite0 blocks.4" in capsys.readouterr().err


def namespace_readers(source: str) -> list[str]:
    """Functions taking the argparse Namespace (a parameter named ``args``) other than a command's
    ``run`` and the converters (``of``, ``*_of``, ``template``) that read it once."""
    import ast

    out = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and any(a.arg == "args" for a in node.args.args + node.args.kwonlyargs)
                and not (node.name in ("run", "of", "template") or node.name.endswith("_of"))):
            out.append(node.name)
    return out


def test_the_command_line_is_a_package_one_module_a_command_and_no_helper_takes_the_namespace():
    """Issue 39 §3: cli.py (826 lines) threaded the Namespace through six helpers; now each command
    reads it once (its ``run``, into a RunRequest and an Output) and the helpers take those."""
    from pathlib import Path

    import invgui.cli as cli

    folder = Path(cli.__file__).parent
    assert Path(cli.__file__).name == "__init__.py"
    assert sorted(cli.COMMANDS) == ["evaluate", "features", "gui", "invert", "layers", "probe", "train-decoder"]
    assert all(hasattr(m, "add_parser") and hasattr(m, "run") for m in cli.COMMANDS.values())
    found = {f.name: namespace_readers(f.read_text(encoding="utf-8")) for f in sorted(folder.glob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}
    # the check sees such a helper (cli.py had _export_one(args, …), _invert_batch(args, …), …)
    assert namespace_readers("def _export_one(args, prep, result): pass\ndef run(args): pass") == ["_export_one"]
