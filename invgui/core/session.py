"""Runs and sessions: every reconstruction kept, saved to one file, restored after a crash.

A :class:`Run` is what a user asked for (method, representation and its parameters, layer, method
parameters, image, decoder) plus what came back (the :class:`Result`: images, losses, metrics,
record) and its state.  A :class:`Session` is an ordered list of runs.  ``save`` writes one
``.invgui`` file — a zip holding ``session.json`` (everything but the images) and ``arrays.npz``
(the images, float16) — atomically; ``load`` reads it back without unpickling anything
(``allow_pickle=False``).  The window's autosave (:mod:`invgui.core.autosave`) keeps each result
in a one-run session file of this format.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvguiError
from .events import Result
from .export import _clean, library_versions
from .images import FRAMINGS, atomic_write
from .methods.base import DEFAULT_IMAGE, RunRequest, freeze_params
from .methods.registry import DEFAULT_METHOD, method, names
from .params import from_dict, to_dict
from .results import Metrics, metric_names, summary, where
from .safeload import budget, npy_header

FORMAT = 2          # 2: a run holds its request ({"request": {...}, "id": …}); 1: the request's fields flat
SUFFIX = ".invgui"
STATES = ("queued", "running", "done", "stopped", "failed")


class SessionError(InvguiError):
    """A session file cannot be read; the message says why."""


@dataclass
class Run:
    """One reconstruction: its :class:`~invgui.core.request.RunRequest` (what ``execute`` runs)
    and, once it ran, its result, with an id, a name, a state and times.  The request's fields
    read through (``run.model``, ``run.layer``, …); ``run.params`` is the method's parameters
    (an ``OptimizeParams``), or None for a method without any."""

    request: RunRequest
    name: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = "queued"
    message: str = ""
    created: float = field(default_factory=time.time)
    result: Result | None = None

    @classmethod
    def of(cls, method: str = DEFAULT_METHOD, image: str = DEFAULT_IMAGE, params: Any = None,
           rep_params: dict[str, Any] | None = None, **fields: Any) -> Run:
        """A run from a request's fields, as the window's settings give them: ``image`` one source,
        ``params`` a dict (read into the method's parameter class) or an instance; the run's own
        fields (``name``, ``state``, ``result``, …) go to the run."""
        own = {k: fields.pop(k) for k in _OWN if k in fields}
        request = RunRequest(method=method, images=(image,), params=_typed_params(method, params),
                             rep_params=freeze_params(rep_params), **fields)
        return cls(request=request, **own)

    # -- the request's fields, read through ---------------------------------------------------
    method = property(lambda self: self.request.method)
    model = property(lambda self: self.request.model)
    layer = property(lambda self: self.request.layer or "")
    image = property(lambda self: self.request.image)
    params = property(lambda self: self.request.params)
    weights = property(lambda self: self.request.weights)
    random_weights = property(lambda self: self.request.random_weights)
    decoder = property(lambda self: self.request.decoder)
    size = property(lambda self: self.request.size)
    eval_size = property(lambda self: self.request.eval_size)
    framing = property(lambda self: self.request.framing)

    @property
    def rep_params(self) -> dict[str, Any] | None:
        return self.request.rep_params_dict()

    def param_values(self) -> dict[str, Any]:
        """The method's parameters as plain values by name ({} for a method without any): for
        comparing runs and naming what differs between them."""
        return to_dict(self.params) if self.params is not None else {}

    def label(self) -> str:
        return self.name or default_name(self)

    def copy(self, **changes: Any) -> Run:
        """A new queued run with the same request and ``changes`` to it (``image``: one source;
        ``params``: a dict or an instance), without the result."""
        if "image" in changes:
            changes["images"] = (changes.pop("image"),)
        name = changes.get("method", self.method)
        changes["params"] = _typed_params(name, changes.get("params", self.params))
        return Run(request=self.request.replace(**changes))

    def summary(self) -> str:
        """The run list's line: state and the result's short summary (core.results)."""
        if self.result is None:
            return self.state
        return f"{self.state}: " + summary(self.result, "short")


_OWN = ("name", "id", "state", "message", "created", "result")


def _typed_params(name: str, values: Any) -> Any:
    """``values`` (a dict, an instance or None) as method ``name``'s parameters: None for a method
    without any, its class's defaults when none are given."""
    cls = method(name).params_cls
    if cls is None:
        return None
    if values is None:
        return cls()
    return values if isinstance(values, cls) else from_dict(cls, dict(values))


def run_fields(r: Run) -> dict[str, Any]:
    """A run as saved (format 2): its request, and its own fields but the result; a run in
    progress is saved as stopped."""
    d: dict[str, Any] = {"request": r.request.to_dict()}
    d.update({k: getattr(r, k) for k in _OWN if k != "result"})
    if r.state == "running":
        d["state"], d["message"] = "stopped", "the session was saved while this run was in progress"
    return d


def session_json(runs: list[dict[str, Any]]) -> str:
    """The text of a session document (``session.json``) holding ``runs``."""
    doc = {"invgui_session": FORMAT, "saved": time.time(), "versions": library_versions(), "runs": runs}
    return json.dumps(_clean(doc), indent=1)


def default_name(run: Run) -> str:
    img = run.image.replace("sample:", "")
    img = Path(img).stem if "/" in img or "\\" in img else img
    what = method(run.method).what(run.param_values())
    return f"{where(run.model, run.layer)} · {what} · {img}" + (" (fit)" if run.framing == "fit" else "")


def distinct_labels(runs: list[Run]) -> dict[str, str]:
    """Each run's label; runs whose labels would be equal get what differs between them appended
    (``lr 0.01``, ``size 96``, ``decoder hog.pt``), so different parameters never look alike."""
    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(r.label(), []).append(r)
    out = {}
    for label, group in groups.items():
        if len(group) == 1:
            out[group[0].id] = label
            continue
        flat = [_request_items(r) for r in group]
        keys = sorted({k for f in flat for k in f}, key=lambda k: (_FIRST.index(k) if k in _FIRST else len(_FIRST), k))
        differ = [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]
        presets = [preset_of(r) for r in group]
        if all(presets) and len(set(presets)) == len(presets):
            differ = ["preset"]             # each is a preset as it is: its name says all ("lucent", "dip")
        for r, f, name in zip(group, flat, presets, strict=True):
            f["preset"] = name
            extra = ", ".join(f"{k} {_short(f.get(k))}" for k in differ[:3])
            out[r.id] = f"{label} ({extra})" if extra else label
    return out


# What tells alike runs apart, the most telling first (then the rest by name): the prior, the optimiser
# and its schedule before the knobs (runs of the default, fourier-tv, lucent and dip presets read
# "(accumulator_decay …" before).
_FIRST = ("preset", "parameterisation", "method", "optimizer", "lr", "iters", "size", "tv_weight", "alpha_weight",
          "feature_weight", "restarts", "seed", "decoder", "weights")


def preset_of(run: Run) -> str | None:
    """The name of the method's preset whose parameters ``run``'s are (None: none is)."""
    presets = method(run.method).presets
    if presets is None or run.params is None:
        return None
    def settings(params) -> dict[str, Any]:      # what a preset sets, not where or how it runs
        return {k: v for k, v in to_dict(params).items() if k not in _RUN_CONTEXT}

    mine = settings(run.params)
    return next((name for name in presets.names() if settings(presets.get(name)) == mine), None)


_RUN_CONTEXT = ("size", "channels", "window", "objective", "preview_every", "channels_last", "cuda_graph")


def _request_items(r: Run) -> dict[str, Any]:
    items = dict(r.param_values())
    items.update({f"{k}": v for k, v in (r.rep_params or {}).items()})
    items.update(size=r.size or items.get("size"), weights=r.weights and Path(r.weights).name,
                 random=r.random_weights or None, decoder=r.decoder and Path(r.decoder).name)
    return {k: v for k, v in items.items() if v is not None}


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ",".join(_short(x) for x in v)
    return str(v)[:24]


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
            d = run_fields(r)
            if r.result is not None:
                res = r.result
                d["result"] = {"history": res.history, "metrics": res.metrics, "record": res.record,
                               "stopped": res.stopped, "message": res.message}
                arrays[f"{i}_images"] = res.images.astype(np.float16)
                if res.target is not None:
                    arrays[f"{i}_target"] = res.target.astype(np.float16)
                if res.deviation is not None:
                    arrays[f"{i}_deviation"] = res.deviation.astype(np.float16)
                if res.start is not None:
                    arrays[f"{i}_start"] = res.start.astype(np.float16)
            meta.append(d)
        text = session_json(meta)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)      # type: ignore[arg-type]  # numpy stub: **kwds are arrays

        def write(tmp: str) -> None:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
                z.writestr("session.json", text)
                z.writestr("arrays.npz", buf.getvalue())

        out = atomic_write(path, write)
        if remember:
            self.path, self.dirty = path, False
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> Session:
        """Read a session file, validating everything before it is used: member sizes are bounded
        before anything is decompressed, every array's shape and type is read from its header and
        checked against its run before its data is, and the JSON must have the documented types.
        Anything wrong is a :class:`SessionError` naming the member and the reason."""
        path = Path(path)
        if not path.is_file():
            raise SessionError(f"{path}: no such session file")
        try:
            with zipfile.ZipFile(path) as z:
                limit = budget(path)
                # JSON becomes Python objects several times its size: a tighter bound than the arrays'.
                json_limit = min(MAX_JSON_BYTES, max(JSON_FLOOR, JSON_RATIO * path.stat().st_size))
                text = _read_member(z, "session.json", json_limit, path)
                try:
                    doc = json.loads(text.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as e:
                    raise SessionError(f"{path}: session.json is not valid JSON ({str(e)[:120]})") from None
                runs, array_keys = _validate_doc(doc, path)
                npz = _read_member(z, "arrays.npz", min(MAX_ARRAY_BYTES, limit), path)
                arrays = _read_arrays(npz, runs, array_keys, path, limit)
        except SessionError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
                RuntimeError) as e:
            raise SessionError(f"{path}: not an invgui session ({type(e).__name__}: {str(e)[:160]})") from None
        out = []
        for i, d in enumerate(runs):
            res = d.pop("result", None)
            run = Run(**d)
            if res is not None:
                run.result = Result(images=arrays[f"{i}_images"], target=arrays.get(f"{i}_target"),
                                    history=res["history"], metrics=res["metrics"], record=res["record"],
                                    stopped=res["stopped"], message=res["message"],
                                    deviation=arrays.get(f"{i}_deviation"), start=arrays.get(f"{i}_start"))
            out.append(run)
        return cls(runs=out, path=path, dirty=False)


class QueueError(InvguiError):
    """A state change the rules do not allow (deleting a running run, finishing a queued one, …)."""


class RunQueue:
    """The runs of a session and the rules of their states, without Qt.

    A run is ``queued`` when submitted, ``running`` while the worker computes it (one at a time,
    or several of a sweep together in one optimisation batch: :meth:`join`),
    then ``done``, ``stopped`` (the user stopped it; it keeps what was reached) or ``failed`` (it
    could not start or raised; the queue goes on).  A session restored from a file has no run in
    progress: ``running`` and ``queued`` runs come back as ``stopped`` (:meth:`restore`).
    ``listeners`` are called with each run whose state or contents changed."""

    def __init__(self, session: Session | None = None):
        self.session = session if session is not None else Session()
        self.listeners: list = []
        self.changed = False             # since the last autosave: set on every change

    # -- what is there ------------------------------------------------------------------------
    @property
    def runs(self) -> list[Run]:
        return self.session.runs

    @property
    def running(self) -> Run | None:
        return next((r for r in self.session.runs if r.state == "running"), None)

    def waiting(self) -> int:
        return sum(r.state == "queued" for r in self.session.runs)

    def get(self, run_id: str) -> Run:
        try:
            return self.session.get(run_id)
        except StopIteration:
            raise QueueError(f"no run {run_id!r} in this session") from None

    # -- transitions --------------------------------------------------------------------------
    def submit(self, run: Run) -> Run:
        run.state, run.message, run.result = "queued", "", None
        self.session.add(run)
        self._touch(run)
        return run

    def adopt(self, runs: list[Run]) -> list[Run]:
        """Add runs read from a file (another window's autosave) as they are, the restore rule
        applied; a run whose id the session has already is skipped (it was added before)."""
        have = {r.id for r in self.session.runs}
        added = [r for r in self.restore(Session(runs=list(runs))).runs if r.id not in have]
        for r in added:
            self.session.add(r)
            self._touch(r)
        return added

    def start_next(self) -> Run | None:
        """The next queued run, now ``running`` — or None when one is running or none waits."""
        if self.running is not None:
            return None
        run = self.session.next_queued()
        if run is not None:
            run.state = "running"
            self._touch(run)
        return run

    def join(self, run: Run) -> Run:
        """A queued run starts beside the running one: the worker computes them in one batch."""
        self._expect(run, "queued", "batch")
        if self.running is None:
            raise QueueError(f"{run.label()}: no run is computing, so there is no batch to join")
        run.state = "running"
        self._touch(run)
        return run

    def finish(self, run: Run, result: Result) -> Run:
        self._expect(run, "running", "finish")
        run.result = result
        run.state = "stopped" if result.stopped else "done"
        run.message = result.message
        self._touch(run)
        return run

    def fail(self, run: Run, message: str) -> Run:
        if run.state not in ("queued", "running"):
            raise QueueError(f"{run.label()}: a {run.state} run cannot fail")
        run.state, run.message = "failed", message
        self._touch(run)
        return run

    def rename(self, run_id: str, name: str) -> Run:
        run = self.get(run_id)
        run.name = name.strip()
        self._touch(run)
        return run

    def rerun(self, run_id: str) -> Run:
        """Queue the same request again (a new run; the old one keeps its result)."""
        return self.submit(self.get(run_id).copy())

    def remove(self, run_id: str) -> Run:
        run = self.get(run_id)
        if run.state == "running":
            raise QueueError(f"{run.label()} is running: stop it before deleting it")
        self.session.remove(run_id)
        self._touch(run)
        return run

    def replace(self, session: Session) -> None:
        """Take ``session`` (opened or restored) as the queue's, with the restore rule applied."""
        if self.running is not None:
            raise QueueError("a run is in progress: stop it before opening another session")
        self.restore(session)
        self.session = session
        self.changed = True

    @staticmethod
    def restore(session: Session) -> Session:
        """No run of a session read from a file is in progress: running/queued become stopped."""
        for r in session.runs:
            if r.state in ("running", "queued"):
                r.state, r.message = "stopped", r.message or "interrupted (the session was closed or crashed)"
        return session

    def _expect(self, run: Run, state: str, what: str) -> None:
        if run.state != state:
            raise QueueError(f"{run.label()}: cannot {what} a {run.state} run")

    def _touch(self, run: Run) -> None:
        self.session.dirty = self.changed = True
        for listener in list(self.listeners):
            listener(run)


# -- validation of session files ------------------------------------------------------------------
# Sizes are bounded before anything is decompressed (safeload.budget: 100 × the file's size, at
# least 64 MiB), and never more than these absolute caps.
MAX_JSON_BYTES = 256 << 20
JSON_FLOOR = 16 << 20       # legitimate session.json compresses 2-5×; histories of 100,000 iterations fit
JSON_RATIO = 10
MAX_ARRAY_BYTES = 4 << 30
MAX_RUNS = 100_000
MAX_SIDE = 4096             # the largest input side invgui computes at (representations.base.MAX_INPUT_SIDE)
MAX_IMAGES_PER_RUN = 1024   # restarts, probe variants, a decoder batch
MAX_TEXT = 1 << 16          # characters in one string field (paths, names, messages)
ARRAY_KINDS = ("images", "target", "deviation", "start")


def _read_member(z: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    try:
        info = z.getinfo(name)
    except KeyError:
        raise SessionError(f"{path}: not an invgui session (it has no {name})") from None
    if info.file_size > limit:
        raise SessionError(f"{path}: {name} would expand to {info.file_size / 2**20:.0f} MiB, more than invgui "
                           f"reads from a file of this size ({limit / 2**20:.0f} MiB)")
    with z.open(info) as f:                      # zipfile stops at the declared size
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SessionError(f"{path}: {name} is larger than it declares")
    return data


def _kind(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _expect(cond: bool, path: Path, where: str, what: str) -> None:
    if not cond:
        raise SessionError(f"{path}: session.json {where}: {what}")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _nan(v: Any) -> Any:
    """Undo the JSON cleaning of saving: null numbers were NaN."""
    if v is None:
        return float("nan")
    if isinstance(v, list):
        return [_nan(x) for x in v]
    return v


def _json_value(v: Any, depth: int = 0) -> bool:
    if depth > 32:
        return False
    if v is None or isinstance(v, (bool, int, float, str)):
        return not isinstance(v, str) or len(v) <= MAX_TEXT
    if isinstance(v, list):
        return all(_json_value(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _json_value(x, depth + 1) for k, x in v.items())
    return False


def _json_shape(hint: Any) -> tuple[tuple[type, ...], bool]:
    """The JSON types (and whether null) a dataclass field of type ``hint`` is saved as: what
    ``RunRequest.to_dict`` and ``run_fields`` write.  Derived, so a new field is read and checked
    without a table to keep up to date."""
    import types
    import typing

    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        shape, _ = _json_shape(inner[0]) if len(inner) == 1 else ((object,), True)
        return shape, type(None) in args
    if hint is Any:
        return (dict,), True                     # parameter dataclasses: a dict of their fields, or null
    if typing.get_origin(hint) is tuple:
        pairs = bool(args) and typing.get_origin(args[0]) is tuple
        return ((dict,), True) if pairs else ((list,), False)     # (name, value) pairs are a dict
    return {float: ((int, float), False)}.get(hint, ((hint,), False))


def _shapes(cls: type, skip: tuple[str, ...] = ()) -> dict[str, tuple[tuple[type, ...], bool]]:
    import typing

    hints = typing.get_type_hints(cls)
    return {f.name: _json_shape(hints[f.name]) for f in dataclasses.fields(cls) if f.name not in skip}


_REQUEST_FIELDS = _shapes(RunRequest)
_RUN_FIELDS = _shapes(Run, skip=("request", "result"))
_REQUIRED = ("method", "model", "layer", "images")
_FORMAT1_OWN = (*_RUN_FIELDS, "result", "result_file")


def _from_format1(d: Any) -> Any:
    """A format-1 run (the request's fields flat beside the run's, one ``image``) as format 2."""
    if not isinstance(d, dict):
        return d
    req = {k: v for k, v in d.items() if k not in _FORMAT1_OWN and k != "image"}
    if "image" in d:
        req["images"] = [d["image"]]
    if req.get("method") in names() and method(req["method"]).params_cls is None:
        req["params"] = None                     # format 1 wrote {} for a decoder run
    return {"request": req, **{k: d[k] for k in _FORMAT1_OWN if k in d}}


def _check_fields(d: dict, shapes: dict, path: Path, where: str) -> None:
    for name, (types, nullable) in shapes.items():
        if name not in d:
            continue
        v = d[name]
        ok = (v is None and nullable) or (isinstance(v, types) and not (isinstance(v, bool) and bool not in types))
        _expect(ok, path, f"{where} {name}", f"expected {'/'.join(t.__name__ for t in types)}"
                f"{' or null' if nullable else ''}, got {_kind(v)}")
        if isinstance(v, str):
            _expect(len(v) <= MAX_TEXT, path, f"{where} {name}", f"text of {len(v)} characters")
        if isinstance(v, list):
            _expect(all(isinstance(x, str) and len(x) <= MAX_TEXT for x in v), path, f"{where} {name}",
                    "expected a list of texts")
        if isinstance(v, dict):
            _expect(_json_value(v), path, f"{where} {name}", "holds values that are not plain JSON")


def _read_request(d: dict, path: Path, where: str) -> RunRequest:
    """A saved request, checked field by field, then as a request (its method's parameters)."""
    for name in _REQUIRED:
        _expect(name in d, path, where, f"the required key {name!r} is missing")
    _check_fields(d, _REQUEST_FIELDS, path, where)
    _expect(d["method"] in names(), path, f"{where} method", f"{d['method']!r:.40} is not one of {', '.join(names())}")
    _expect(len(d["images"]) == 1, path, f"{where} images", f"a run has one image, not {len(d['images'])}")
    _expect(d.get("framing", "crop") in FRAMINGS, path, f"{where} framing",
            f"{d.get('framing')!r:.40} is not one of {', '.join(FRAMINGS)}")
    for key in ("size", "eval_size"):
        _expect(0 <= d.get(key, 0) <= MAX_SIDE, path, f"{where} {key}", f"{d.get(key)} is outside 0…{MAX_SIDE}")
    spec = method(d["method"])
    if spec.params_cls is not None and d.get("params") is None:
        d = {**d, "params": {}}                  # the method's defaults
    try:
        request = RunRequest.from_dict({k: v for k, v in d.items() if k in _REQUEST_FIELDS})
    except ValueError as e:
        raise SessionError(f"{path}: session.json {where} params: {e}") from None
    if spec.params_cls is None and request.params is not None:
        raise SessionError(f"{path}: session.json {where} params: the {spec.word} method takes none")
    # A file does not carry the user's trust: a TorchScript model (a program) it names is refused
    # until the user trusts it again in this invgui (--trust-torchscript, or the window's question).
    return request.replace(trust_torchscript=False)


def _validate_doc(doc: Any, path: Path, inline_results: bool = True) -> tuple[list[dict], set[str]]:
    """The runs of a session document (format 1 or 2) as ``Run`` keyword dicts (``request`` a
    RunRequest, ``result`` a checked dict), and the array members they need; a SessionError for
    anything of the wrong type or out of range.  ``inline_results=False`` (an autosave index,
    whose results live in files of their own): a run that holds a result object is refused, as it
    has no images to go with it."""
    _expect(isinstance(doc, dict), path, "top level", f"expected an object, got {_kind(doc)}")
    fmt = doc.get("invgui_session")
    _expect(_is_num(fmt) and not isinstance(fmt, float), path, "invgui_session",
            f"expected a format number, got {fmt!r:.40}")
    if fmt > FORMAT:
        raise SessionError(f"{path}: session format {fmt} is newer than this invgui reads ({FORMAT})")
    runs = doc.get("runs")
    _expect(isinstance(runs, list), path, "runs", f"expected a list, got {_kind(runs)}")
    _expect(len(runs) <= MAX_RUNS, path, "runs", f"{len(runs)} runs, more than invgui reads ({MAX_RUNS})")
    out, keys, ids = [], set(), set()
    for i, d in enumerate(runs):
        where = f"run {i}"
        d = _from_format1(d) if fmt < 2 else d
        _expect(isinstance(d, dict), path, where, f"expected an object, got {_kind(d)}")
        _expect(isinstance(d.get("request"), dict), path, f"{where} request",
                f"expected an object, got {_kind(d.get('request'))}")
        _check_fields(d, _RUN_FIELDS, path, where)
        kw: dict[str, Any] = {k: d[k] for k in _RUN_FIELDS if k in d}
        kw["request"] = _read_request(d["request"], path, where)
        _expect(kw.get("state", "queued") in STATES, path, f"{where} state",
                f"{kw.get('state')!r:.40} is not one of {', '.join(STATES)}")
        if "id" in kw:
            _expect(kw["id"] not in ids, path, f"{where} id", f"{kw['id']!r:.40} is used by an earlier run")
            ids.add(kw["id"])
        res = d.get("result")
        if res is not None and not inline_results:
            raise SessionError(f"{path}: {where}: holds a result object; an autosave index names each run's "
                               "result by its result_file")
        if res is not None:
            kw["result"] = _validate_result(res, path, f"{where} result", kw["request"].method)
            keys.add(f"{i}_images")
        out.append(kw)
    return out, keys


# What the run list, the result panel and the comparison view read from a result, by method.
_RECORD_KEYS = {"representation": str, "layer": str, "layer_shape": list}
# Members read where present: each must have its type (None = absent) — a record whose "params"
# is a list passed the reader and raised in the window when the run was shown.
_RECORD_TYPES: dict[str, type | tuple[type, ...]] = {
    "params": dict, "resolved": dict, "decoder_meta": dict, "decoder_stage": dict, "labels": list,
    "rows": int, "batch": int, "batch_index": int, "batch_rows": list, "input_size": int, "method": str,
    "decoder": str, "device": str, "device_name": str, "weights_file": str, "checkpoint": str,
    "feature_files": list, "relative_depth": (int, float), "warnings": list}
_RECORD_OBJECTS = ("params", "resolved", "decoder_meta", "decoder_stage")


def _validate_result(res: Any, path: Path, where: str, name: str = DEFAULT_METHOD) -> dict:
    spec = method(name)
    _expect(isinstance(res, dict), path, where, f"expected an object, got {_kind(res)}")
    hist = res.get("history", {})
    _expect(isinstance(hist, dict), path, f"{where} history", f"expected an object, got {_kind(hist)}")
    for k, v in hist.items():
        _expect(isinstance(v, list) and all(x is None or _is_num(x) for x in v), path, f"{where} history {k}",
                "expected a list of numbers")
    out = {"history": {k: [float(x) if x is not None else float("nan") for x in v] for k, v in hist.items()}}
    for name in ("metrics", "record"):
        v = res.get(name, {})
        _expect(isinstance(v, dict) and _json_value(v), path, f"{where} {name}", f"expected a plain JSON object, "
                f"got {_kind(v)}")
        out[name] = {k: _nan(x) for k, x in v.items()} if name == "metrics" else v
    for key, tp in _RECORD_KEYS.items():
        v = out["record"].get(key)
        _expect(isinstance(v, tp), path, f"{where} record {key}", f"expected {tp.__name__}, got {_kind(v)}")
    _expect(all(_is_num(v) for v in out["record"]["layer_shape"]), path, f"{where} record layer_shape",
            "expected a list of numbers")
    for key, tps in _RECORD_TYPES.items():
        v = out["record"].get(key)
        # absent is fine; present it has its type — null too is refused for what the window reads as an
        # object ("params": null passed here and raised when the run was shown)
        absent = v is None and (key not in out["record"] or key not in _RECORD_OBJECTS)
        _expect(absent or (isinstance(v, tps) and not isinstance(v, bool)), path, f"{where} record {key}",
                f"expected {getattr(tps, '__name__', 'a number')}, got {_kind(v)}")
    for key in spec.metric_keys + tuple(k for k in ("psnr", "ssim") if k in out["metrics"]):
        v = out["metrics"].get(key)
        _expect(_is_num(v), path, f"{where} metrics {key}", f"expected a number, got {_kind(v)}")
    for key, v in out["metrics"].items():       # every metric the window reads: a number (NaN for null)
        if key in metric_names(Metrics):
            _expect(_is_num(v), path, f"{where} metrics {key}", f"expected a number, got {_kind(v)}")
        elif key.endswith(("_per_image", "_per_restart")):
            _expect(isinstance(v, list) and all(_is_num(x) or x is None for x in v), path,
                    f"{where} metrics {key}", "expected a list of numbers")
    if spec.uses_decoder:
        _expect(isinstance(out["record"].get("decoder"), str), path, f"{where} record decoder",
                f"expected text, got {_kind(out['record'].get('decoder'))}")
    stopped, message = res.get("stopped", False), res.get("message", "")
    _expect(isinstance(stopped, bool), path, f"{where} stopped", f"expected true/false, got {_kind(stopped)}")
    _expect(isinstance(message, str) and len(message) <= MAX_TEXT, path, f"{where} message",
            f"expected text, got {_kind(message)}")
    out.update(stopped=stopped, message=message)
    return out


def _read_arrays(npz_bytes: bytes, runs: list[dict], needed: set[str], path: Path, limit: int) -> dict:
    """The runs' arrays, each checked from its .npy header (dtype, shape, size) before its data is read."""
    member = "arrays.npz"
    try:
        z = zipfile.ZipFile(io.BytesIO(npz_bytes))
    except zipfile.BadZipFile as e:
        raise SessionError(f"{path}: {member} is not an array archive ({e})") from None
    budget = limit
    out: dict[str, np.ndarray] = {}
    with z:
        names = {n[:-4] if n.endswith(".npy") else n: n for n in z.namelist()}
        for key in sorted(names):
            where = f"{member}/{key}"
            idx, _, kind = key.partition("_")
            if not (idx.isdigit() and int(idx) < len(runs) and kind in ARRAY_KINDS):
                raise SessionError(f"{path}: {where}: an array that belongs to no run of this session")
            if runs[int(idx)].get("result") is None:
                raise SessionError(f"{path}: {where}: run {idx} has no result to hold it")
            info = z.getinfo(names[key])
            if info.file_size > budget:
                raise SessionError(f"{path}: {where}: {info.file_size / 2**20:.0f} MiB is more than this file "
                                   f"may expand to")
            budget -= info.file_size
            with z.open(info) as f:
                try:
                    shape, fortran, dtype = npy_header(f)
                except (ValueError, SyntaxError, TypeError) as e:
                    raise SessionError(f"{path}: {where}: not an array ({str(e)[:120]})") from None
                _check_array(shape, dtype, kind, path, where)
                n = int(np.prod(shape)) * dtype.itemsize
                data = f.read(n + 1)
            if len(data) != n:
                raise SessionError(f"{path}: {where}: {len(data)} bytes of data for shape {shape}")
            arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
            arr = arr.astype(np.float32)
            if not np.isfinite(arr).all():
                raise SessionError(f"{path}: {where}: holds NaN or infinite values")
            out[key] = arr
    missing = sorted(needed - set(out))
    if missing:
        raise SessionError(f"{path}: {member}: the result of run {missing[0].split('_')[0]} has no images")
    for i in range(len(runs)):
        img = out.get(f"{i}_images")
        if img is None:
            continue
        h, w = img.shape[1:3]
        dev = out.get(f"{i}_deviation")
        for kind in ("target", "start"):
            a = out.get(f"{i}_{kind}")
            if a is not None and a.shape != (h, w, 3):
                raise SessionError(f"{path}: {member}/{i}_{kind}: shape {a.shape} does not match the run's "
                                   f"images {img.shape}")
        if dev is not None and dev.shape != (h, w):
            raise SessionError(f"{path}: {member}/{i}_deviation: shape {dev.shape} does not match the run's "
                               f"images {img.shape}")
    return out


def _check_array(shape: tuple, dtype: np.dtype, kind: str, path: Path, where: str) -> None:
    if dtype not in (np.dtype(np.float16), np.dtype(np.float32)):
        raise SessionError(f"{path}: {where}: pixel type {dtype} (sessions hold float16 images)")
    ndim = {"images": 4, "target": 3, "deviation": 2, "start": 3}[kind]
    if len(shape) != ndim:
        raise SessionError(f"{path}: {where}: shape {shape}, expected {ndim} dimensions")
    spatial = shape[1:3] if kind == "images" else shape[:2]
    if not all(1 <= s <= MAX_SIDE for s in spatial):
        raise SessionError(f"{path}: {where}: shape {shape}: sides must be 1…{MAX_SIDE} pixels")
    if kind == "images" and not 1 <= shape[0] <= MAX_IMAGES_PER_RUN:
        raise SessionError(f"{path}: {where}: {shape[0]} images in one run (1…{MAX_IMAGES_PER_RUN})")
    if kind in ("images", "target") and shape[-1] != 3:
        raise SessionError(f"{path}: {where}: shape {shape}: expected 3 colour channels")
