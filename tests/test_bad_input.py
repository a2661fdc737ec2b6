"""Issue 37 §1b: bad input destroys nothing and gets a clear message, never "unexpected error"."""

import os
import stat
import tty

import numpy as np
import pytest

from invgui.cli import main
from invgui.core.files import save_png


def test_an_export_streams_to_a_character_device_instead_of_replacing_it(tmp_path):
    """Before: every export wrote a temporary and renamed it over the destination: `invert --out
    /dev/null` (as root) replaced the machine's /dev/null with a regular file.  A pseudo-terminal is a
    character device anyone can make, so the test never touches /dev/null."""
    master, slave = os.openpty()
    tty.setraw(slave)                                     # bytes pass unchanged (no "\n" → "\r\n")
    path = os.ttyname(slave)
    img = np.zeros((8, 8, 3), np.float32)
    save_png(path, img)
    assert stat.S_ISCHR(os.stat(path).st_mode)
    expected = (tmp_path / "x.png")
    save_png(expected, img)
    want = expected.read_bytes()
    got = b""
    while len(got) < len(want):
        got += os.read(master, 4096)
    assert got == want
    os.close(master)
    os.close(slave)


def test_an_export_onto_a_fifo_is_refused_and_the_fifo_stays(tmp_path, capsys):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(PermissionError, match="is a FIFO"):
        save_png(fifo, np.zeros((8, 8, 3), np.float32))
    assert main(["features", "sample:coffee", "--model", "hog", "--out", str(tmp_path / "f.pt"), "--picture",
                 str(fifo)]) == 2
    assert "is a FIFO (named pipe), not a file" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and not (tmp_path / "f.pt").exists()


def test_running_out_of_cpu_memory_is_said_as_such(monkeypatch, capsys):
    """PyTorch's CPU allocator raises RuntimeError, not MemoryError: it ended as 'unexpected error'."""
    import invgui.cli as cli

    def oom(args):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 412316860416 bytes.")
    monkeypatch.setattr(cli.layers, "run", oom)
    assert main(["layers", "hog"]) == 2
    err = capsys.readouterr().err
    assert "invgui: error: out of memory; try a smaller --size" in err and "unexpected" not in err


# -- models: names, checkpoint folders, modules --------------------------------------------------

@pytest.mark.parametrize("name", ["timm:vit*", "timm:*", "timm:", "timm:resnet1?"])
def test_a_timm_pattern_is_not_an_architecture(name):
    """Before: timm.list_models treats its argument as a pattern, so "vit*" passed the check and
    failed inside timm.create_model (and `invgui gui --model timm:vit*` aborted the process)."""
    from invgui.core import representations as R

    with pytest.raises(R.RepresentationError, match="timm has no architecture .*give one name, not a pattern"):
        R.get(name, random_weights=True)


@pytest.mark.parametrize("config, said", [
    ({"architecture": "resnet18", "num_classes": 10**9}, "'num_classes' should be a whole number"),
    ({"architecture": "resnet18", "pretrained_cfg": {"input_size": [3, 99999, 224]}}, "pretrained_cfg.input_size"),
    ({"architecture": "resnet18", "pretrained_cfg": {"std": [0, 1, 1]}}, "pretrained_cfg.std"),
    ({"architecture": "resnet18", "pretrained_cfg": {"mean": ["a", 1, 1]}}, "pretrained_cfg.mean"),
    ({"architecture": "resnet18", "pretrained_cfg": 5}, "'pretrained_cfg' should be an object"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_a_checkpoint_folders_config_is_checked_field_by_field(tmp_path, config, said):
    """Before: config.json was used field by field unchecked (num_classes 10⁹ asked for 384 GB)."""
    import json

    from invgui.core import representations as R

    (tmp_path / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(R.RepresentationError, match="config.json") as e:
        R.get("timm:resnet18", weights=str(tmp_path))
    assert said in str(e.value)


def test_modules_from_python_without_layers_or_with_nan_weights_are_refused():
    import torch
    from torch import nn

    from invgui.core import representations as R
    from invgui.core.request import RunRequest

    with pytest.raises(R.RepresentationError, match="no submodules, so no layer to invert"):
        RunRequest(model=nn.Conv2d(3, 4, 3))                           # before: IndexError
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(R.RepresentationError, match=r"NaN or infinite values \(first in 0.weight\)"):
        RunRequest(model=net)


def test_a_request_checks_its_types_at_the_door():
    """Before: images="photo.png" was read one character at a time, a tuple of arrays was
    'unhashable', params as a dict or a preset name an AttributeError deep in the run."""
    from pathlib import Path

    from invgui.core.methods.optimize import PRESETS
    from invgui.core.request import RequestError, RunRequest

    with pytest.raises(RequestError, match="images: expected a tuple of sources.*one character at a time"):
        RunRequest(images="sample:coffee")
    with pytest.raises(RequestError, match="not a ndarray .*save it as a PNG"):
        RunRequest(images=(np.zeros((8, 8, 3)),))
    with pytest.raises(RequestError, match="size: expected a whole number"):
        RunRequest(size="64")
    with pytest.raises(RequestError, match="params: expected OptimizeParams"):
        RunRequest(params=3)
    assert RunRequest(params="fast").params == PRESETS.get("fast")
    assert RunRequest(params={"iters": 7}).params.iters == 7
    assert RunRequest(images=[Path("a.png")]).images == ("a.png",)
    assert RunRequest(rep_params={"cell": 8}).rep_params == (("cell", 8),)


@pytest.mark.gui
def test_show_refuses_an_unknown_method_before_a_window_opens(qtbot):
    from PySide6.QtWidgets import QApplication

    import invgui
    from invgui.core.errors import InvguiError

    before = len(QApplication.topLevelWidgets())
    with pytest.raises(InvguiError, match="nope"):
        invgui.show(method="nope", block=False, restore=False)
    assert len(QApplication.topLevelWidgets()) == before


@pytest.mark.slow
def test_an_error_escaping_the_windows_set_up_closes_cleanly(tmp_path):
    """Before: the worker QThread was left running and Qt aborted the process (SIGABRT, core dump)."""
    import subprocess
    import sys

    code = ("import invgui.app as app\n"
            "def boom(*a, **k): raise RuntimeError('set-up failed')\n"
            "app.configure = boom\n"
            "from invgui.cli import main\n"
            f"raise SystemExit(main(['gui', '--screenshot', {str(tmp_path / 'x.png')!r}]))\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "INVGUI_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "invgui: unexpected error: RuntimeError: set-up failed" in r.stderr
    assert "QThread: Destroyed" not in r.stderr


# -- feature files -------------------------------------------------------------------------------

def test_a_sparse_feature_file_and_a_name_without_suffix_are_said(tmp_path, capsys):
    """Before: both ended as 'unexpected error' (a sparse tensor deep in torch.isfinite; torch.save
    refusing the temporary's name)."""
    import torch

    from invgui.core import features_io

    dense = torch.rand(3, 4, 4)
    for i, obj in enumerate((dense.to_sparse(), {"features": dense.to_sparse(), "meta": {}})):
        torch.save(obj, tmp_path / f"s{i}.pt")
        with pytest.raises(features_io.FeatureFileError, match="sparse_coo tensor; save them dense"):
            features_io.load(tmp_path / f"s{i}.pt")
    assert main(["features", "sample:coffee", "--model", "hog", "--out", str(tmp_path / "feats")]) == 2
    assert "a feature file's name ends in .pt" in capsys.readouterr().err
    assert not list(tmp_path.glob("feats*"))
