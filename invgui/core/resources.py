"""Where the files invgui reads at run time (shipped decoders, icons) are.

They live in the repository's top-level ``resources/`` folder, which the build maps to the
package ``invgui.resources`` (pyproject.toml ``[tool.setuptools] package-dir``), so a wheel and a
non-editable install carry them and ``importlib.resources`` finds them there.  When invgui runs
from a source tree that is not installed (``PYTHONPATH=.``, the benchmarks, the GPU machine), no
package ``invgui.resources`` exists and the folder beside the ``invgui`` package is used.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

PACKAGE = "invgui.resources"


def state_dir() -> Path:
    """invgui's own folder (``$INVGUI_HOME`` or ``~/.local/state/invgui``): autosave, settings,
    weights converted on first use."""
    return Path(os.environ.get("INVGUI_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state", "invgui"))


def resource_root() -> Path:
    """The folder holding ``decoders/`` and ``icons/``."""
    try:
        root = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError:
        root = None
    if isinstance(root, Path) and root.is_dir():
        return root
    # Not installed (or installed as a zip, which invgui does not support): the source tree.
    return Path(__file__).resolve().parents[2] / "resources"


def resource(*parts: str) -> Path:
    """A path under the resource folder (it may not exist: callers check)."""
    return resource_root().joinpath(*parts)
