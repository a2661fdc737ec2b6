import subprocess
import sys

import pytest


def test_core_never_imports_qt():
    code = (
        "import sys\n"
        "import invgui.core, invgui.core.images, invgui.core.params, invgui.core.events, invgui.core.metrics\n"
        "import invgui.core.export, invgui.core.regularizers, invgui.core.representations\n"
        "import invgui.core.methods.optimize, invgui.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'PySide6', 'shiboken6', 'pyqtgraph'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"invgui.core pulled in Qt modules: {out.stdout}"


@pytest.mark.slow
def test_inverting_the_embedded_default_imports_nothing_heavy_it_does_not_need(tmp_path):
    """Issue 13 cold start: `invgui invert` on the embedded default imports neither timm nor
    torchvision (which imports torch._dynamo, ~2 s), nor torch._dynamo through torch.optim, nor
    SciPy's statistics (through scikit-image's PSNR), nor scikit-image's io (through samples)."""
    code = (
        "import sys\n"
        "from invgui.cli import main\n"
        f"rc = main(['invert', '--iters', '2', '--size', '64', '--quiet', '-o', {str(tmp_path / 'x.png')!r}, "
        "'sample:chelsea'])\n"
        "heavy = ('timm', 'torchvision', 'torch._dynamo', 'scipy.stats', 'skimage.io', 'kornia')\n"
        "print(rc, ','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0", f"heavy modules imported: {out.stdout}"
    assert (tmp_path / "x.png").is_file()


def test_help_and_argument_errors_do_not_import_torch():
    """Issue 27 §7: `invgui --help` took 8.5 s because building the parser imported torch (5.4 s)
    through the parameter dataclasses.  The parser now reads only pure-data modules (catalog,
    *_params); every subcommand's --help and an argparse error must answer without torch."""
    code = (
        "import sys, contextlib, io\n"
        "from invgui.cli import main\n"
        "calls = [['--help'], ['invert', '--help'], ['train-decoder', '--help'], ['probe', '--help'],\n"
        "         ['features', '--help'], ['layers', '--help'], ['gui', '--help'], ['invert', '--iters', 'x'],\n"
        "         ['invert', '--preset', 'nope'], ['nope']]\n"
        "codes = []\n"
        "for argv in calls:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit as e:\n"
        "            codes.append(e.code)\n"
        "heavy = ('torch', 'numpy', 'PIL', 'PySide6')\n"
        "print(codes)\n"
        "print('imported:', ','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    codes, heavy = out.stdout.strip().splitlines()[-2:]
    assert codes == "[0, 0, 0, 0, 0, 0, 0, 2, 2, 2]", out.stdout
    assert heavy == "imported:", f"--help or an argument error {heavy}"


def test_the_catalogue_and_the_registry_name_the_same_representations():
    """catalog.py (pure data, for the parser) and representations.REGISTRY (how each is built)
    must list the same names, titles, families and parameters."""
    from invgui.core import catalog
    from invgui.core import representations as R

    assert list(catalog.CATALOG) == list(R.REGISTRY) and catalog.DEFAULT == R.DEFAULT
    for name, listing in catalog.CATALOG.items():
        entry = R.REGISTRY[name]
        assert (entry.title, entry.family, entry.embedded, entry.presets) == \
               (listing.title, listing.family, listing.embedded, listing.presets)


def _defined_names(path) -> set[str]:
    """What a module defines at its top level (functions, classes, assignments, imports)."""
    import ast

    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.If, ast.Try)):
            names.update(n.name for n in ast.walk(node) if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
            names.update((a.asname or a.name).split(".")[0] for n in ast.walk(node)
                         if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names)
    return names


def test_every_import_of_invgui_resolves_the_lazy_ones_too():
    """Issue 38: after ui/ moved into folders, `from .ui import theme` inside the splash function
    (imported only when the app starts without --screenshot) pointed at a module that had moved,
    and mypy did not say so (ignore_missing_imports).  Every `from X import Y` of the package —
    at the top or inside a function — names a module that exists and a Y it has."""
    import ast
    import importlib.util
    from pathlib import Path

    import invgui

    root = Path(invgui.__file__).parent
    bad = []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if not module.startswith("invgui"):
                continue
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None:
                bad.append(f"{path.relative_to(root.parent)}:{node.lineno}: no module {module}")
                continue
            have = _defined_names(Path(spec.origin))
            for alias in node.names:
                if alias.name != "*" and alias.name not in have and \
                        importlib.util.find_spec(f"{module}.{alias.name}") is None:
                    bad.append(f"{path.relative_to(root.parent)}:{node.lineno}: {module} has no {alias.name}")
    assert bad == [], "\n".join(bad)


def test_the_start_up_card_paints(qtbot):
    """The card shown while torch is imported (never drawn by --screenshot runs, which the other
    tests use)."""
    from PySide6.QtWidgets import QApplication

    from invgui.app import _splash

    card = _splash(QApplication.instance())
    qtbot.addWidget(card)
    assert not card.pixmap().isNull() and card.pixmap().width() == 420
    card.close()


def test_the_core_tests_drive_no_window():
    """Issue 38 §3: tests/ mirrors invgui/ — a test that drives Qt lives in tests/ui (two had stayed in
    tests/core beside the core tests they borrowed helpers from)."""
    import re
    from pathlib import Path

    core = Path(__file__).resolve().parent / "core"
    qt = re.compile(r"\bqtbot\b|^\s*(from|import) (PySide6|pyqtgraph|invgui\.ui)\b", re.M)
    found = [f"{p.name}: {m.group(0).strip()}" for p in sorted(core.glob("*.py"))
             for m in qt.finditer(p.read_text(encoding="utf-8"))]
    assert found == []
