"""The window's autosave: incremental, so a session of hundreds of runs costs little to keep safe.

A result never changes once it has arrived, so each one is written once, to its own one-run
session file (``runs/<run id>-<token>.invgui``, the format of :mod:`invgui.core.session`).  What
changes — the list of runs, their names and states — lives in a small index, ``session.json``,
rewritten at each autosave.  Writing the whole session every minute instead cost 2.1 s (19 MB,
GIL held while encoding) for 204 runs at 96 px, and grew with the session; now an autosave writes
the new results and an index of a few hundred bytes per run.

The folder (``$INVGUI_HOME/autosave`` or ``~/.local/state/invgui/autosave``)::

    session.json            the index: every run's request, name, state; "result_file" per result
    session.previous.json   the index it replaced (a hard link, moved in atomically)
    runs/*.invgui           one file per result, written once, removed when no index names it

At every moment a complete index is on disk (both are replaced atomically) and every file it
names exists (result files are written before the index that names them, and removed only when
neither index names them).  Recovery never stops the window: an unreadable index is moved aside
(``session-broken-STAMP.json``) and the previous one tried; a result file that cannot be read is
moved aside (``run-broken-STAMP-NAME``) and only that run comes back without its images.  An
autosave written by invgui before this scheme (one ``autosave.invgui`` file) is still restored.

Result files are removed only when this window wrote or restored them and no index names them —
not the current, the previous, nor any moved-aside broken one.  A file that no readable index
names (a broken index's results, a crash between a result and its index) is kept until the user
removes it; the recovery message says where, and each opens as a session.

Several windows: each autosaves to a folder of its own (a *slot*: ``autosave``, ``autosave-2``,
…), held by a lock file with the owner's pid and host (``lock``).  A window takes the first slot
that is free or whose owner is gone (same host, process not alive), so a second window never
overwrites the first one's index; at the next start the window restores its own slot and
:func:`other_autosaves` lists the others left behind, which the window offers to bring back.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .events import Result
from .files import atomic_write
from .resources import state_dir
from .session import SUFFIX, Run, Session, SessionError, _validate_doc, run_fields, session_json

INDEX = "session.json"
PREVIOUS = "session.previous.json"
RUNS = "runs"
MAX_INDEX_BYTES = 64 << 20          # ~100,000 runs; the index holds no histories or images
LOCK = "lock"
MAX_SLOTS = 32                      # windows autosaving at once under one INVGUI_HOME
LOCK_GRACE_SECONDS = 30             # an unreadable lock this old is a crash between creating and writing it
_RESULT_FILE = re.compile(r"^runs/[0-9A-Za-z_-]{1,80}\.invgui$")
_NAMED = re.compile(r"runs/[0-9A-Za-z_-]{1,80}\.invgui")        # found even in an index that is not JSON


def autosave_dir() -> Path:
    return state_dir() / "autosave"


def autosave_path() -> Path:
    """The autosave's index: it exists when there is an autosave."""
    return autosave_dir() / INDEX


def legacy_paths() -> tuple[Path, Path]:
    """The one-file autosave (and its previous one) of invgui before the incremental autosave."""
    return state_dir() / f"autosave{SUFFIX}", state_dir() / f"autosave.previous{SUFFIX}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                       # EPERM: alive, another user's
        return True
    return True


class SlotLock:
    """The lock file that makes an autosave folder one window's: created exclusively, it holds the
    owner's pid and host; a lock whose process is gone (same host) is stale and taken over."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def acquire(cls, folder: Path) -> SlotLock | None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LOCK
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not cls._stale(path):
                    return None
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}, f)
            return cls(path)
        return None

    @staticmethod
    def owner(path: Path) -> dict | None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return doc if isinstance(doc, dict) and isinstance(doc.get("pid"), int) else None
        except (OSError, ValueError):
            return None

    @classmethod
    def _stale(cls, path: Path) -> bool:
        doc = cls.owner(path)
        if doc is None:
            try:
                return time.time() - path.stat().st_mtime > LOCK_GRACE_SECONDS
            except FileNotFoundError:
                return True
        if doc.get("host") != socket.gethostname():
            return False                       # another machine's (a shared home): cannot tell, keep out
        return not _alive(doc["pid"])

    @classmethod
    def held(cls, folder: Path) -> bool:
        path = folder / LOCK
        return path.exists() and not cls._stale(path)

    def release(self) -> None:
        doc = self.owner(self.path)
        if doc is not None and doc["pid"] == os.getpid():
            self.path.unlink(missing_ok=True)


def slot_folder(k: int, base: Path | None = None) -> Path:
    """The autosave folder of slot ``k`` (1 = the usual ``autosave``)."""
    base = base if base is not None else autosave_dir()
    return base if k == 1 else base.with_name(f"{base.name}-{k}")


def claim() -> AutosaveStore:
    """An autosave store on the first slot no live window holds (see the module's text)."""
    for k in range(1, MAX_SLOTS + 1):
        lock = SlotLock.acquire(slot_folder(k))
        if lock is not None:
            return AutosaveStore(slot_folder(k), lock=lock)
    raise OSError(f"{autosave_dir()}: {MAX_SLOTS} invgui windows are autosaving already")


def other_autosaves(mine: Path) -> list[tuple[Path, int]]:
    """Slots other than ``mine`` that no live window holds and whose index names runs: (folder,
    number of runs), what a window offers to bring back."""
    found = []
    for k in range(1, MAX_SLOTS + 1):
        folder = slot_folder(k)
        if folder == mine or not (folder / INDEX).is_file() or SlotLock.held(folder):
            continue
        n = len(_index_runs(folder / INDEX))
        if n:
            found.append((folder, n))
    return found


@dataclass
class Recovered:
    """What :meth:`AutosaveStore.recover` found: a session to restore (or None) and what to tell the user."""

    session: Session | None
    message: str = ""
    moved_to: Path | None = None


@dataclass
class AutosaveStore:
    """Writes and reads one autosave folder.  Remembers which result it has written to which file
    (by the result object: a result is never changed after it arrives), so each is written once."""

    folder: Path = field(default_factory=autosave_dir)
    lock: SlotLock | None = None
    _broken: dict[tuple, set[str]] = field(default_factory=dict)           # broken index → files it names
    _stored: dict[str, tuple[Result, str]] = field(default_factory=dict)   # run id → (result, file)
    _own: set[str] = field(default_factory=set)                            # files written or restored here

    @property
    def index(self) -> Path:
        return self.folder / INDEX

    @property
    def previous(self) -> Path:
        return self.folder / PREVIOUS

    # -- writing -------------------------------------------------------------------------------
    def write(self, session: Session) -> Path:
        """Autosave ``session``: write the results not written yet, then the index."""
        (self.folder / RUNS).mkdir(parents=True, exist_ok=True)
        entries, stored = [], {}
        for r in session.runs:
            entry = run_fields(r)
            if r.result is not None:
                known = self._stored.get(r.id)
                if known is None or known[0] is not r.result or not (self.folder / known[1]).is_file():
                    name = f"{RUNS}/{r.id}-{uuid.uuid4().hex[:8]}{SUFFIX}"
                    Session(runs=[r]).save(self.folder / name, remember=False)
                    self._own.add(name)
                    known = (r.result, name)
                stored[r.id] = known
                entry["result_file"] = known[1]
            entries.append(entry)
        self._stored = stored
        text = session_json(entries)
        if self.index.is_file():                      # keep the index being replaced as the previous one
            tmp = self.folder / f".{PREVIOUS}.tmp"
            tmp.unlink(missing_ok=True)
            try:
                os.link(self.index, tmp)              # no copy
            except OSError:
                import shutil

                shutil.copyfile(self.index, tmp)
            os.replace(tmp, self.previous)
        atomic_write(self.index, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        self._prune({name for _, name in stored.values()} | _named_files(self.previous))
        return self.index

    def _prune(self, keep: set[str]) -> None:
        """Remove the result files this store wrote or restored that no index names any more —
        no index at all: the current, the previous, or a moved-aside broken one.  Files that are
        not ours (a broken index's, a crash between a result and its index) are never removed:
        :meth:`unnamed` lists them for the user."""
        keep = keep | self._named_by_broken()
        for name in list(self._own):
            if name in keep:
                continue
            try:
                (self.folder / name).unlink(missing_ok=True)
                self._own.discard(name)
            except OSError:
                pass

    def _named_by_broken(self) -> set[str]:
        """The result files moved-aside broken indexes name; each file is read once (by its size
        and time), not at every autosave."""
        names: set[str] = set()
        for p in self.folder.glob("session*-broken-*.json"):
            try:
                st = p.stat()
                key = (p.name, st.st_size, st.st_mtime)
                if key not in self._broken:
                    self._broken[key] = set(_NAMED.findall(
                        p.read_text(encoding="utf-8", errors="replace")[:MAX_INDEX_BYTES]))
                names.update(self._broken[key])
            except OSError:
                pass
        return names

    def names_runs(self, run_ids: list[str]) -> bool:
        """Whether this store's index on disk names every one of ``run_ids`` (with its results:
        they are written before the index that names them)."""
        return set(run_ids) <= {r.get("id") for r in _index_runs(self.index)}

    def unnamed(self) -> list[Path]:
        """Result files no readable index names (kept for the user, never removed by the store)."""
        keep = _named_files(self.index) | _named_files(self.previous) | self._own
        try:
            return sorted(p for p in (self.folder / RUNS).glob(f"*{SUFFIX}") if f"{RUNS}/{p.name}" not in keep)
        except OSError:
            return []

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # -- reading -------------------------------------------------------------------------------
    def read(self, index: Path) -> tuple[Session, list[str]]:
        """The session an index describes, and a note per run whose result file could not be read
        (that run comes back stopped, without images; the file is moved aside).  A SessionError
        when the index itself cannot be used."""
        size = index.stat().st_size
        if size > MAX_INDEX_BYTES:
            raise SessionError(f"{index}: {size / 2**20:.0f} MiB, more than an autosave index can be")
        try:
            doc = json.loads(index.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise SessionError(f"{index}: not valid JSON ({str(e)[:120]})") from None
        kws, _ = _validate_doc(doc, index, inline_results=False)
        runs, notes = [], []
        for i, (kw, raw) in enumerate(zip(kws, doc["runs"], strict=True)):
            name = raw.get("result_file")
            if name is not None and not (isinstance(name, str) and _RESULT_FILE.match(name)):
                raise SessionError(f"{index}: run {i} result_file: {str(name)[:60]!r} is not a result file name")
            run = Run(**kw)
            if name is not None:
                try:
                    run.result = self._read_result(self.folder / name, run.id)
                    self._stored[run.id] = (run.result, name)
                    self._own.add(name)
                except (SessionError, OSError) as e:
                    moved = _move_aside(self.folder / name, self.folder / f"run-broken-{_stamp()}-{Path(name).name}")
                    run.state = "stopped"
                    run.message = f"its images could not be read from the autosave ({e})"
                    notes.append(f"the images of {run.label()} could not be read"
                                 + (f" (the file was moved aside to {moved})" if moved else ""))
            runs.append(run)
        return Session(runs=runs), notes

    @staticmethod
    def _read_result(path: Path, run_id: str) -> Result:
        one = Session.load(path)
        if len(one.runs) != 1 or one.runs[0].id != run_id or one.runs[0].result is None:
            raise SessionError(f"{path}: not the result of run {run_id}")
        return one.runs[0].result

    def recover(self) -> Recovered:
        """The autosaved session, if there is a readable one (see the module's text)."""
        legacy, legacy_previous = legacy_paths() if self.folder == autosave_dir() else (None, None)
        notes: list[str] = []
        moved: Path | None = None
        for candidate in (self.index, self.previous, legacy, legacy_previous):
            if candidate is None or not candidate.is_file():
                continue
            try:
                lost: list[str]
                if candidate.suffix == SUFFIX:
                    session, lost = Session.load(candidate), []
                else:
                    session, lost = self.read(candidate)
            except Exception as e:                    # any failure: move it aside, never crash the start
                target = _free_name(candidate.with_name(f"{candidate.stem}-broken-{_stamp()}{candidate.suffix}"))
                done = _move_aside(candidate, target)
                moved = moved or done
                notes.append(f"the autosaved session {candidate.name} could not be read ({e}); "
                             + (f"it was moved aside to {done}" if done else "nor moved aside"))
                continue
            notes.extend(lost)
            if candidate != self.index and session.runs:
                notes.append(f"restored the autosave {candidate.name} instead")
            if moved is not None:
                kept = [p for p in self.unnamed() if f"{RUNS}/{p.name}" not in _named_files(candidate)]
                if kept:
                    notes.append(f"{len(kept)} result file(s) that only the unreadable index named are kept in "
                                 f"{self.folder / RUNS} (each opens with File ▸ Open session; delete them when "
                                 "no longer needed)")
            session.path, session.dirty = None, True
            return Recovered(session if session.runs else None, "; ".join(notes), moved)
        return Recovered(None, "; ".join(notes), moved)


def _index_runs(index: Path) -> list[dict]:
    """The run records of an index, leniently (nothing when it cannot be read)."""
    try:
        runs = json.loads(index.read_text(encoding="utf-8"))["runs"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []


def _named_files(index: Path) -> set[str]:
    """The result files an index names (nothing when it cannot be read)."""
    return {r["result_file"] for r in _index_runs(index) if isinstance(r.get("result_file"), str)}


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _free_name(target: Path) -> Path:
    n, base = 1, target
    while target.exists():
        target = base.with_name(f"{base.stem}-{n}{base.suffix}")
        n += 1
    return target


def _move_aside(path: Path, target: Path) -> Path | None:
    """Move ``path`` to a free name like ``target`` (nothing is deleted); None when it cannot be moved."""
    try:
        target = _free_name(target)
        os.replace(path, target)
        return target
    except OSError:
        return None
