"""A session: the ordered list of runs the window and the API keep, saved to one file and read
back (:mod:`.fileformat`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .fileformat import read_runs, write_runs
from .runs import Run


@dataclass
class Session:
    """An ordered list of runs; ``path`` the file it was last saved to or read from, ``dirty``
    whether it changed since."""

    runs: list[Run] = field(default_factory=list)
    path: Path | None = None
    dirty: bool = False

    def add(self, run: Run) -> Run:
        self.runs.append(run)
        self.dirty = True
        return run

    def remove(self, run_id: str) -> None:
        self.runs = [r for r in self.runs if r.id != run_id]
        self.dirty = True

    def get(self, run_id: str) -> Run:
        return next(r for r in self.runs if r.id == run_id)

    def next_queued(self) -> Run | None:
        return next((r for r in self.runs if r.state == "queued"), None)

    # -- files (the format: .fileformat) ------------------------------------------------------
    def save(self, path: str | os.PathLike, remember: bool = True) -> Path:
        """Write every run (request, state, result) to one file, atomically.  ``remember=False``
        (the autosave) leaves the session's own file and unsaved-changes flag alone."""
        out = write_runs(self.runs, path)
        if remember:
            self.path, self.dirty = Path(path), False
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> Session:
        """Read a session file, every part checked before it is used (:func:`.fileformat.read_runs`);
        anything wrong is a :class:`SessionError` naming the member and the reason."""
        return cls(runs=read_runs(path), path=Path(path), dirty=False)
