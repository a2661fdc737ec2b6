"""The ``.invgui`` file: a zip of ``session.json`` (everything but the images) and ``arrays.npz``
(the images, float16), written atomically and read back without unpickling anything; every member,
field and array checked (bounded sizes, documented types) before it is used."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvguiError
from ..events import Result
from ..export import _clean, library_versions
from ..files import atomic_write
from ..images import FRAMINGS
from ..methods.base import RunRequest
from ..methods.registry import DEFAULT_METHOD, method, names
from ..results import Metrics, metric_names
from ..safeload import budget, npy_header
from .runs import _OWN, STATES, Run

FORMAT = 2          # 2: a run holds its request ({"request": {...}, "id": …}); 1: the request's fields flat
SUFFIX = ".invgui"


class SessionError(InvguiError):
    """A session file cannot be read; the message says why."""


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
    for key in spec.record_keys:
        _expect(isinstance(out["record"].get(key), str), path, f"{where} record {key}",
                f"expected text, got {_kind(out['record'].get(key))}")
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


def write_runs(runs: list[Run], path: str | os.PathLike) -> Path:
    """Write ``runs`` (request, state, result) to one session file, atomically."""
    path = Path(path)
    meta, arrays = [], {}
    for i, r in enumerate(runs):
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

    return atomic_write(path, write)


def read_runs(path: str | os.PathLike) -> list[Run]:
    """Read a session file's runs, validating everything before it is used: member sizes are bounded
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
    return out
