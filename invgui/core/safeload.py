"""Bounds checked before a file is decompressed or unpickled, so that a small crafted file cannot
make invgui allocate gigabytes: every zip member (torch checkpoints, sessions and ``.npz`` files
are zips) may expand to at most ``RATIO`` × the file's size, and never less than ``FLOOR``."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import InvguiError

RATIO = 100
FLOOR = 64 << 20


class TooLargeError(InvguiError):
    """A file declares more data than invgui reads from a file of its size."""


def budget(path: str | os.PathLike) -> int:
    return max(FLOOR, RATIO * Path(path).stat().st_size)


def check_archive(path: str | os.PathLike) -> None:
    """Refuse a zip whose members together declare more than :func:`budget` bytes (no-op for a
    file that is not a zip: torch's legacy format and ``.npy`` files are read as they are)."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return
    limit = budget(path)
    with zipfile.ZipFile(path) as z:
        total = sum(i.file_size for i in z.infolist())
    if total > limit:
        raise TooLargeError(f"{path}: declares {total / 2**20:.0f} MiB of contents, more than invgui reads from a "
                            f"file of {path.stat().st_size / 2**20:.1f} MiB")


def npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) of a ``.npy`` stream, read without reading its data."""
    version = np.lib.format.read_magic(f)
    reader = {(1, 0): np.lib.format.read_array_header_1_0,
              (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if reader is None:
        raise InvguiError(f"unsupported .npy format version {version}")
    return reader(f, max_header_size=10000)
