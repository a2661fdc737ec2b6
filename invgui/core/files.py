"""File safety: every file invgui writes is written whole or not at all.

:func:`atomic_write` writes to a temporary beside the destination and renames it into place (a
crash leaves the old file, never half a new one; stale temporaries of a killed process are swept);
inside ``with FileSet():`` a whole export's files move into place together or not at all;
:func:`check_writable` says before minutes of computing that a destination cannot be written;
character devices (``/dev/null``) are streamed to, never renamed over, and FIFOs, sockets and
block devices refused.  The image savers (:func:`save_png`, :func:`save_tiff16`,
:func:`save_png_dpi`) write through it.  Used by exports, sessions, the autosave, decoder
checkpoints, feature files and figures.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import threading
from pathlib import Path

import numpy as np

_SPECIAL = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
            (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def path_problem(path: str | os.PathLike, e: OSError) -> str:
    """A sentence for an :class:`OSError` on ``path`` that says what to do instead of a raw errno."""
    if e.errno == errno.ENAMETOOLONG:
        longest = max((len(os.fsencode(part)) for part in Path(path).parts), default=0)
        return (f"{str(path)[:80]}…: the file name is too long for the file system (its longest part has "
                f"{longest} bytes, the usual limit is 255 per name and 4096 for the whole path); "
                "rename it or give a shorter path")
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"{path}: cannot read (permission denied)"
    if e.errno == errno.ENOTDIR:
        return f"{path}: a part of the path is a file, not a folder"
    if e.errno == errno.ELOOP:
        return f"{path}: too many levels of symbolic links"
    return f"{path}: cannot read ({e.strerror or e})"


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)



_UMASK = os.umask(0o022)                # read once (os.umask only sets): not per write, from any thread
os.umask(_UMASK)
TMP_PREFIX = ".invgui-partial-"    # temporaries of our writes; stale ones (a killed process) are swept
STALE_SECONDS = 3600


def check_writable(path: str | os.PathLike, what: str = "") -> Path:
    """``path`` when a file can be written there (the folder exists and takes a new file); else
    an :class:`OSError` naming the path and why.  Called before anything long is computed, so a
    run is never lost to a destination that cannot be written."""
    path = Path(path)
    label = f"{what} {path}".strip()
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise OSError(path_problem(path, e).replace("rename it or give", "give")) from None
    if path.is_dir():
        raise IsADirectoryError(f"{label}: is a folder; give a file name")
    if _special_destination(path, label):
        return path                                  # a character device (/dev/null): written to as a stream
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"{label}: cannot write, the folder {folder} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
    except OSError as e:
        raise PermissionError(f"{label}: cannot write to the folder {folder} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"{label}: the file exists and cannot be overwritten")
    return path


class FileSet:
    """Several files written as one: inside ``with FileSet():`` every :func:`atomic_write` of this
    thread goes to a temporary beside its destination, and the temporaries are moved into place
    only when the block ends without an error — so an export writes its whole set of files or
    leaves none of them (a failure removes every temporary).  Files the set replaces (an earlier
    export under the same names) are kept aside, hard-linked, until the whole set is in place; if
    moving any file in fails, those already moved are taken back and the old ones put back."""

    _active = threading.local()

    def __init__(self) -> None:
        self.pending: list[tuple[str, Path]] = []

    def __enter__(self) -> FileSet:
        if getattr(self._active, "set", None) is not None:
            raise RuntimeError("FileSets do not nest")
        self._active.set = self
        return self

    def __exit__(self, kind, value, tb) -> None:
        self._active.set = None
        if kind is not None:
            self.abort()
            return
        kept: list[tuple[Path, Path | None]] = []      # (destination, its old file kept aside or None)
        try:
            for tmp, dest in self.pending:
                old = _keep_aside(dest)
                try:
                    os.replace(tmp, dest)
                except BaseException:
                    if old is not None:               # dest was not replaced: its second name goes
                        old.unlink(missing_ok=True)
                    raise
                kept.append((dest, old))
        except BaseException:
            for dest, old in reversed(kept):         # all or nothing: the old set comes back
                try:
                    if old is not None:
                        os.replace(old, dest)
                    else:
                        dest.unlink(missing_ok=True)
                except OSError:
                    pass
            self.abort()
            raise
        for _, old in kept:
            if old is not None:
                old.unlink(missing_ok=True)
        self.pending.clear()

    def abort(self) -> None:
        for tmp, _ in self.pending:
            Path(tmp).unlink(missing_ok=True)
        self.pending.clear()

    @classmethod
    def current(cls) -> FileSet | None:
        return getattr(cls._active, "set", None)


def _keep_aside(dest: Path) -> Path | None:
    """A second name (a hard link, or a copy where links are not allowed) for the file at
    ``dest``, beside it, before a new file replaces it; None when there is no file there."""
    if not dest.is_file():
        return None
    fd, aside = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{dest.stem[:40]}-old-", suffix=dest.suffix, dir=dest.parent)
    os.close(fd)
    os.unlink(aside)
    try:
        os.link(dest, aside)
    except OSError:
        import shutil

        shutil.copy2(dest, aside)
    return Path(aside)


def _sweep_stale(folder: Path) -> None:
    """Remove our temporaries left in ``folder`` by a process that was killed mid-write."""
    import time

    try:
        for p in folder.glob(f"{TMP_PREFIX}*"):
            try:
                if time.time() - p.stat().st_mtime > STALE_SECONDS:
                    p.unlink()
            except OSError:
                pass
    except OSError:
        pass


def _special_destination(path: Path, label: str = "") -> bool:
    """True when ``path`` is a character device (``/dev/null``, a terminal): a write streams to it,
    never renames over it (run as root, a rename replaced the machine's /dev/null with a regular
    file).  A FIFO, socket or block device is refused: a rename would destroy it and a write to a
    FIFO blocks until someone reads.  False for a regular file or a new name."""
    try:
        st = os.stat(path)                       # follows links: a link to /dev/null is /dev/null
    except OSError:
        return False
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return False
    if stat.S_ISCHR(st.st_mode):
        return True
    what = next((w for test, w in _SPECIAL if test(st.st_mode)), "not a regular file")
    raise PermissionError(f"{label or path}: is {what}, not a file: invgui writes only regular files (and streams to "
                          "character devices such as /dev/null); give a file name")


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` and move the result into place, so no half-written file is left
    (inside a :class:`FileSet`, the move waits for the whole set).

    Raises :class:`OSError` subclasses with a message naming ``path`` when the folder cannot be written.
    """
    path = Path(path)
    if _special_destination(path):
        _stream_to(path, write)
        return path
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: cannot write, the folder {folder} does not exist")
    _sweep_stale(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.stem[:40]}-", suffix=path.suffix, dir=folder)
    except OSError as e:
        raise PermissionError(f"{path}: cannot write to the folder {folder} ({e.strerror or e})") from None
    os.close(fd)
    group = FileSet.current()
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)          # mkstemp makes 0600; a written file gets the usual mode
        if group is not None:
            group.pending.append((tmp, path))
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _stream_to(device: Path, write) -> None:
    """``write`` into a temporary file, then its bytes into the character device ``device``."""
    import shutil

    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=device.suffix)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as src, open(device, "wb") as dst:
            shutil.copyfileobj(src, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)


def save_png(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Save an ``H×W×3`` float image in [0, 1] (or uint8) as an 8-bit PNG, atomically."""
    from PIL import Image

    arr = img if img.dtype == np.uint8 else to_uint8(img)
    return atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format="PNG"))


def save_tiff16(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Save an ``H×W×3`` float image in [0, 1] as a 16-bit RGB TIFF, atomically (full precision)."""
    import cv2

    arr = (np.clip(img, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)[..., ::-1]     # OpenCV writes BGR

    def write(tmp: str) -> None:
        if not cv2.imwrite(tmp, np.ascontiguousarray(arr)):
            raise OSError(f"{path}: OpenCV could not write the TIFF")

    return atomic_write(path, write)


def save_png_dpi(path: str | os.PathLike, img: np.ndarray, dpi: int = 300) -> Path:
    """An 8-bit PNG that says its print resolution (for contact sheets)."""
    from PIL import Image

    arr = img if img.dtype == np.uint8 else to_uint8(img)
    return atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format="PNG", dpi=(dpi, dpi)))
