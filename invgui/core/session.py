"""Runs and sessions: every reconstruction kept, saved to one file, restored after a crash.

A :class:`Run` is what a user asked for (method, representation and its parameters, layer, method
parameters, image, decoder) plus what came back (the :class:`Result`: images, losses, metrics,
record) and its state.  A :class:`Session` is an ordered list of runs.  ``save`` writes one
``.invgui`` file — a zip holding ``session.json`` (everything but the images) and ``arrays.npz``
(the images, float16) — atomically; ``load`` reads it back without unpickling anything
(``allow_pickle=False``).  The window autosaves to :func:`autosave_path` every minute while
there are unsaved changes, so a crash or a kill loses at most the last minute.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .events import Result
from .export import _clean, library_versions
from .images import atomic_write

FORMAT = 1
SUFFIX = ".invgui"
STATES = ("queued", "running", "done", "stopped", "failed")


class SessionError(ValueError):
    """A session file cannot be read; the message says why."""


@dataclass
class Run:
    """One reconstruction: the request and, once it ran, its result."""

    method: str                                   # "optimize" or "decoder"
    model: str
    layer: str
    image: str                                    # path or sample:NAME
    params: dict[str, Any] = field(default_factory=dict)       # OptimizeParams as a dict (optimize)
    rep_params: dict[str, Any] | None = None
    weights: str | None = None
    random_weights: bool = False
    decoder: str | None = None
    size: int = 0                                 # decoder: reconstruction size (0 = its own)
    name: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = "queued"
    message: str = ""
    created: float = field(default_factory=time.time)
    result: Result | None = None

    def label(self) -> str:
        return self.name or default_name(self)

    def copy(self, **changes: Any) -> "Run":
        """A new queued run with the same request (and ``changes``), without the result."""
        base = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("id", "state", "message", "created", "result", "name")}
        base["params"] = dict(self.params)
        return Run(**{**base, **changes})

    def summary(self) -> str:
        if self.result is None:
            return self.state
        m = self.result.metrics
        bits = [f"rep. error {m['representation_error']:.3f}"] if "representation_error" in m else []
        if "psnr" in m:
            bits.append(f"PSNR {m['psnr']:.1f}")
        if "seconds" in m:
            bits.append(format_seconds(m["seconds"]))
        return f"{self.state}: " + ", ".join(bits)


def format_seconds(sec: float) -> str:
    return f"{sec * 1000:.0f} ms" if sec < 1 else f"{sec:.1f} s"


def default_name(run: Run) -> str:
    img = run.image.replace("sample:", "")
    img = Path(img).stem if "/" in img or "\\" in img else img
    what = "decoder" if run.method == "decoder" else run.params.get("objective", "invert")
    return f"{run.model} {run.layer} · {what} · {img}"


@dataclass
class Session:
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

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, remember: bool = True) -> Path:
        """Write every run (request, state, result) to one file, atomically.  ``remember=False``
        (the autosave) leaves the session's own file and unsaved-changes flag alone."""
        path = Path(path)
        meta, arrays = [], {}
        for i, r in enumerate(self.runs):
            d = {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.name != "result"}
            if r.state == "running":
                d["state"], d["message"] = "stopped", "the session was saved while this run was in progress"
            if r.result is not None:
                res = r.result
                d["result"] = {"history": res.history, "metrics": res.metrics, "record": res.record,
                               "stopped": res.stopped, "message": res.message}
                arrays[f"{i}_images"] = res.images.astype(np.float16)
                if res.target is not None:
                    arrays[f"{i}_target"] = res.target.astype(np.float16)
                if res.deviation is not None:
                    arrays[f"{i}_deviation"] = res.deviation.astype(np.float16)
            meta.append(d)
        doc = {"invgui_session": FORMAT, "saved": time.time(), "versions": library_versions(), "runs": meta}
        text = json.dumps(_clean(doc), indent=1)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)

        def write(tmp: str) -> None:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
                z.writestr("session.json", text)
                z.writestr("arrays.npz", buf.getvalue())

        out = atomic_write(path, write)
        if remember:
            self.path, self.dirty = path, False
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Session":
        path = Path(path)
        if not path.is_file():
            raise SessionError(f"{path}: no such session file")
        try:
            with zipfile.ZipFile(path) as z:
                doc = json.loads(z.read("session.json").decode("utf-8"))
                arrays = np.load(io.BytesIO(z.read("arrays.npz")), allow_pickle=False)
                arrays = {k: arrays[k] for k in arrays.files}
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
            raise SessionError(f"{path}: not an invgui session ({type(e).__name__}: {str(e)[:160]})") from None
        if doc.get("invgui_session", 0) > FORMAT:
            raise SessionError(f"{path}: session format {doc['invgui_session']} is newer than this invgui reads")
        runs = []
        names = {f.name for f in dataclasses.fields(Run)}
        for i, d in enumerate(doc.get("runs", [])):
            res = d.pop("result", None)
            run = Run(**{k: v for k, v in d.items() if k in names})
            if res is not None and f"{i}_images" in arrays:
                run.result = Result(images=arrays[f"{i}_images"].astype(np.float32),
                                    target=_opt(arrays.get(f"{i}_target")), history=res.get("history", {}),
                                    metrics=res.get("metrics", {}), record=res.get("record", {}),
                                    stopped=res.get("stopped", False), message=res.get("message", ""),
                                    deviation=_opt(arrays.get(f"{i}_deviation")))
            runs.append(run)
        return cls(runs=runs, path=path, dirty=False)


def _opt(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else a.astype(np.float32)


def autosave_path() -> Path:
    """Where the window autosaves (``$INVGUI_HOME`` or ``~/.local/state/invgui``)."""
    base = os.environ.get("INVGUI_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state", "invgui")
    return Path(base) / f"autosave{SUFFIX}"
