"""invgui: see what an image representation keeps, by inverting it."""

__version__ = "0.1.0"


def show(model=None, image=None, layer: str | None = None, *, weights: str | None = None,
         random_weights: bool = False, method: str | None = None, block: bool | None = None,
         restore: bool = True):
    """Open invgui's main window from Python — a script, IPython or Jupyter (run ``%gui qt``
    first, as for napari, so the window lives beside the prompt) — and return it.

    ``model``: a registered name, ``timm:ARCH`` / ``torchvision:ARCH`` (with ``weights``: a state
    dict, ``.safetensors`` or checkpoint folder, or ``random_weights``), a checkpoint folder, or a
    ``torch.nn.Module`` built in the session (invgui inverts a frozen copy; runs and sessions name
    it ``python:CLASS@HASH``).  ``image``: a path, ``sample:NAME``, or an H×W×3 array (written as
    a PNG into invgui's state folder so sessions can reopen it).  ``block`` (default: unless a Qt
    event loop is already integrated, as ``%gui qt`` does) runs the event loop until the window
    closes.  ``restore=False``: a fresh window that neither restores nor writes the autosave."""
    import sys

    from PySide6.QtWidgets import QApplication

    from .core.errors import InvguiError

    app = QApplication.instance() or QApplication(sys.argv[:1])
    import pyqtgraph  # noqa: F401  (before torch, as the app does)

    from .app import configure
    from .ui.main.window import MainWindow

    if method is not None:                   # checked at the door, before a window opens
        from .core.methods.registry import method as known

        if not isinstance(method, str):
            raise InvguiError(f"method: expected a method name, got {type(method).__name__}")
        known(method)
    if layer is not None and not isinstance(layer, str):
        raise InvguiError(f"layer: expected a layer name, got {type(layer).__name__}")
    name = model
    if model is not None and not isinstance(model, str):
        from .core.representations.modules import register_module

        name = register_module(model)
    source = _image_source(image)
    win = MainWindow(image=source, restore=restore, model_later=name is not None)
    try:
        error = configure(win, model=name, layer=layer, weights=weights, random_weights=random_weights,
                          method=method)
    except BaseException:
        win.close()                          # its worker thread stopped before the error goes up
        raise
    if error:
        win.close()
        raise InvguiError(error)
    win.show()
    if block is None:
        block = not _qt_loop_running()
    if block:
        app.exec()
    return win


def _image_source(image) -> str | None:
    """A path or sample name as it is; an array written once as a PNG named by its hash."""
    if image is None or isinstance(image, str):
        return image
    import hashlib

    import numpy as np

    from .core.files import save_png
    from .core.resources import state_dir

    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    path = state_dir() / "python-images" / f"{hashlib.sha256(arr.tobytes()).hexdigest()[:16]}.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_png(path, np.clip(arr, 0, 1))
    return str(path)


def _qt_loop_running() -> bool:
    """Whether IPython (``%gui qt``) or Jupyter already runs Qt's event loop for us."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    kernel = getattr(shell, "kernel", None)
    return bool(getattr(shell, "active_eventloop", None) or getattr(kernel, "eventloop", None))
