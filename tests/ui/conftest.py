"""The window fixture (and a model load held back) for the tests that drive the real window."""

import pytest
from ui_helpers import make_window


@pytest.fixture()
def window(qtbot):
    w = make_window(qtbot)
    yield w
    w.close()
    assert not w.controller.worker.qthread.isRunning()


@pytest.fixture()
def held_model_load(monkeypatch):
    """The window's model-loading thread waits in ``R.get`` until the test sets the returned event."""
    import threading

    from invgui.core import representations as R

    release, real_get = threading.Event(), R.get

    def slow_get(*a, **k):
        if threading.current_thread().name == "invgui-model-load":
            release.wait(30)
        return real_get(*a, **k)

    monkeypatch.setattr(R, "get", slow_get)
    return release
