"""Regression test for the PySide6 6.12.0 / Python 3.11 abort: every ``Signal.emit()`` from Python
dropped one reference to ``True`` and the interpreter died ("Fatal Python error: bool_dealloc")
after ~40,000 emits.  Runs in a subprocess, since the failure is an abort of the interpreter."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QCoreApplication, QObject, Signal

    app = QCoreApplication([])

    class Emitter(QObject):
        value = Signal(object)
        flag = Signal(bool)

    got = [0]
    e = Emitter()
    e.value.connect(lambda v: got.__setitem__(0, got[0] + 1))
    e.flag.connect(lambda v: got.__setitem__(0, got[0] + bool(v)))
    before = sys.getrefcount(True)
    for i in range(50_000):
        e.value.emit(i)
        e.flag.emit(True)
    drift = before - sys.getrefcount(True)
    import gc
    gc.collect()
    print("emits", got[0], "drift", drift)
""")


def test_100000_signal_emits_exit_cleanly():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert "emits 100000" in proc.stdout
    # On Python 3.11 True is a normal refcounted object: its count must not drift.
    if sys.version_info < (3, 12):
        assert "drift 0" in proc.stdout, proc.stdout
