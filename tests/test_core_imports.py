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
