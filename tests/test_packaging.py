"""A built wheel (a non-editable install) carries everything read at run time: the shipped
decoders and the icons are inside it and are found through importlib.resources once installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_package_list_matches_the_source_tree():
    # pyproject lists the packages (it must, to map resources/ into invgui); a new subpackage left
    # out of the list would be missing from every wheel.
    import tomllib

    from setuptools import find_packages

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert listed == set(find_packages(str(ROOT), include=["invgui*"])) | {"invgui.resources"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Build from a copy, so that the build's own folders (build/, *.egg-info) stay out of the tree.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "invgui", src / "invgui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "resources", src / "resources", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "resources" / "decoders" / "half-done.training.pt").write_bytes(b"partial")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
    (found,) = out.glob("invgui-*.whl")
    return found


def test_wheel_carries_the_run_time_resources(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "resources" / "decoders").glob("*.pt") if ".training" not in p.name}
    assert shipped, "the repository ships decoders"
    for name in shipped:
        assert f"invgui/resources/decoders/{name}" in names
    assert "invgui/resources/icons/run.svg" in names
    assert not any(".training" in n for n in names), "a decoder still being trained must stay out"
    assert not any(n.startswith("docs/") or "/images/" in n for n in names), "the docs and their pictures stay out"


@pytest.mark.slow
def test_installed_wheel_finds_its_decoders(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    code = (
        "import invgui, sys\n"
        "from invgui.core.resources import resource_root\n"
        "from invgui.core.methods.decoder import shipped_decoders, find_shipped, load_checkpoint\n"
        "print(invgui.__file__); print(resource_root())\n"
        "found = shipped_decoders(); assert found, 'no shipped decoders found'\n"
        "path = find_shipped('hog', 'hog'); assert path is not None, found\n"
        "loaded = load_checkpoint(path); print(loaded.meta['representation'], sorted(found))\n"
    )
    # From an empty folder with only the installed copy first on the path: the source tree's
    # invgui (editable install) must not be the one imported.
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    module, root, *_ = done.stdout.splitlines()
    assert Path(module).is_relative_to(target)
    assert Path(root) == target / "invgui" / "resources"
    assert "hog" in done.stdout
