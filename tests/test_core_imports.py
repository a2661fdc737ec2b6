import subprocess
import sys


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
