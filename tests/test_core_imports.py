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
