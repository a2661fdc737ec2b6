"""Paper-scale evaluation: methods × layers × a folder of images, resumable, shardable.

The work list is every (layer, method, image) of a :class:`Plan`, in a fixed order (layers, then
methods, then the images sorted by path).  Each finished run is one row appended to a CSV file and
flushed to disk at once, so a killed evaluation loses at most the runs in flight and a rerun with
the same plan skips the rows already written.  A plan is written to the results folder on the
first run; a rerun with another plan into that folder is refused with the differences named.

Work is shared deterministically: shard ``i`` of ``n`` takes items ``i, i + n, i + 2n, …`` of the
work list and writes ``runs.shard-i-of-n.csv``; whoever finds every item done merges all rows into
``runs.csv`` in work-list order — the file a single process writes — and writes ``summary.csv``.
Under ``torchrun`` the shard is the rank (``RANK`` / ``WORLD_SIZE``); ``--shard I/N`` does the same
for job arrays.  Optimisation runs are batched per layer (one request of several images, each
image's result the one its own run would give); decoders run a batch in one forward pass.

The normalised reconstruction error is paper 001's ‖x − x̂‖/N with N the mean distance between
pairs of the evaluated (readable) images at the evaluation side: rows keep ‖x − x̂‖, the summary
divides by N, so rows of any shard or rerun are comparable.  With a judge (``Plan.judge``, see
core.judge) each row also keeps the perceptual distance ‖C(x̂) − C(x)‖² / ‖C(x)‖² in a network none
of the methods inverts.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvguiError
from .images import ImageError, check_source, load_image, resize_center_crop, save_png

FIELDS = ("index", "image", "layer", "method", "representation_error", "psnr", "ssim", "distance", "side",
          "iterations", "seconds", "device", "perceptual")
SHEET_IMAGES = 8                   # the contact sheets show the first K images (their reconstructions kept)
SUMMARY_FIELDS = ("method", "layer", "depth", "n", "nre_mean", "nre_std", "representation_error_mean",
                  "representation_error_std", "psnr_mean", "psnr_std", "ssim_mean", "ssim_std", "perceptual_mean",
                  "perceptual_std", "set_distance")
DECODER_BATCH = 16                 # images per decoder forward pass
N_IMAGES = 2000                    # N (the set's mean pairwise distance) over at most this many images


class EvaluateError(InvguiError):
    pass


@dataclass(frozen=True)
class Plan:
    """What an evaluation computes: every result depends on these and on nothing else."""

    model: str
    layers: tuple[str, ...]
    methods: tuple[str, ...]
    data: str
    limit: int = 0                                  # the first N images (0: all)
    params: dict = field(default_factory=dict)      # OptimizeParams as a dict (optimisation, hybrid)
    decoders: dict = field(default_factory=dict)    # layer → decoder file or shipped name ("" : the shipped one)
    size: int = 0                                   # input side (0: the model's own; a decoder's own)
    weights: str | None = None
    random_weights: bool = False
    rep_params: dict = field(default_factory=dict)
    judge: str = ""                                 # the perceptual distance's network (core.judge; "": none)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"], d["methods"] = list(self.layers), list(self.methods)
        return d

    def differences(self, other: dict) -> list[str]:
        """What differs from a plan written earlier (``to_dict`` form), in words."""
        mine = json.loads(json.dumps(self.to_dict()))
        out = []
        for k in sorted(set(mine) | set(other)):
            if mine.get(k) != other.get(k):
                a, b = other.get(k), mine.get(k)
                if isinstance(a, dict) and isinstance(b, dict):
                    out += [f"{k}.{n}: {a.get(n)!r} then, {b.get(n)!r} now" for n in sorted(set(a) | set(b))
                            if a.get(n) != b.get(n)]
                else:
                    out.append(f"{k}: {a!r} then, {b!r} now")
        return out


@dataclass(frozen=True)
class Item:
    index: int
    image: str
    layer: str
    method: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.image, self.layer, self.method


def images_of(plan: Plan) -> list[str]:
    """The evaluated images: every image file under ``plan.data`` sorted by path (or the bundled
    photos for ``samples``), the first ``plan.limit``."""
    if plan.data == "samples":
        from .images import SAMPLE_SET

        found = [f"sample:{n}" for n in SAMPLE_SET]
    else:
        from .methods.decoder.data import list_images  # the folders decoder training reads, read alike

        found = [str(p) for p in list_images(plan.data)]
    if plan.limit:
        found = found[:plan.limit]
    if not found:
        raise EvaluateError(f"{plan.data}: no images")
    return found


def work_list(plan: Plan, images: list[str]) -> list[Item]:
    items, i = [], 0
    for layer in plan.layers:
        for name in plan.methods:
            for image in images:
                items.append(Item(i, image, layer, name))
                i += 1
    return items


def shard_of(items: list[Item], shard: int, shards: int) -> list[Item]:
    return items[shard::shards]


def _shard_file(out: Path, shard: int, shards: int) -> Path:
    return out / ("runs.csv" if shards == 1 else f"runs.shard-{shard}-of-{shards}.csv")


def read_rows(path: Path, mend: bool = True) -> list[dict[str, str]]:
    """The complete rows of a results file; a last line cut short by a kill is dropped (and, with
    ``mend``, the file rewritten without it, so appending goes on from a clean end; a viewer reads
    without mending: the evaluation may be writing that line now)."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n").split(",") != list(FIELDS):
        raise EvaluateError(f"{path}: not an invgui evaluate results file (its header differs)")
    rows, good = [], [lines[0]]
    for line in lines[1:]:
        if not line.endswith("\n"):
            break                                         # cut short: the run is done again
        row = next(csv.reader([line]))
        if len(row) != len(FIELDS):
            break
        rows.append(dict(zip(FIELDS, row, strict=True)))
        good.append(line)
    if mend and len(good) != len(lines):
        path.write_text("".join(good), encoding="utf-8")
    return rows


class _Writer:
    """Appends rows to one results file, each flushed to disk before the next run starts."""

    def __init__(self, path: Path):
        new = not path.is_file()
        self.f = path.open("a", encoding="utf-8", newline="")
        self.w = csv.writer(self.f, lineterminator="\n")
        if new:
            self.w.writerow(FIELDS)
            self._sync()

    def _sync(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())

    def add(self, row: dict) -> None:
        self.w.writerow([row[k] for k in FIELDS])
        self._sync()

    def close(self) -> None:
        self.f.close()


def check_plan(plan: Plan, out: Path) -> None:
    """Write the plan into a new results folder, or refuse another plan in an old one."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "plan.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise EvaluateError(f"{path}: not readable ({e})") from None
        diff = plan.differences(old)
        if diff:
            raise EvaluateError(f"{out} holds an evaluation with other arguments ({'; '.join(diff)}): give another "
                                "--out, or the same arguments to resume it")
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(plan.to_dict(), indent=1), encoding="utf-8")
    tmp.replace(path)


@dataclass
class Progress:
    done: int = 0                 # rows written (this process)
    skipped: int = 0              # rows already there (resumed)
    total: int = 0                # rows of this shard
    unreadable: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _requests(plan: Plan, items: list[Item], device: str = "auto") -> Iterator[tuple[Any, list[Item]]]:
    """The requests that compute ``items`` (all of one layer and method): optimisation and hybrid
    runs batched (at most 64 rows of images × restarts), decoders ``DECODER_BATCH`` a pass."""
    from .methods.optimize import batches
    from .methods.optimize_params import OptimizeParams
    from .methods.registry import method
    from .params import from_dict
    from .request import RunRequest

    spec = method(items[0].method)
    params = from_dict(OptimizeParams, plan.params) if plan.params else OptimizeParams()
    if plan.size:
        params = dataclasses.replace(params, size=plan.size)
    decoder = plan.decoders.get(items[0].layer) or None
    if spec.one_pass:
        chunks = [range(i, min(i + DECODER_BATCH, len(items))) for i in range(0, len(items), DECODER_BATCH)]
    else:
        chunks = batches(len(items), params.restarts)
    for chunk in chunks:
        part = [items[i] for i in chunk]
        extra: dict[str, Any] = {"decoder": decoder, "size": plan.size} if spec.uses_decoder else {}
        yield RunRequest(method=spec.name, model=plan.model, layer=items[0].layer, images=tuple(i.image for i in part),
                         params=params if spec.params_cls is not None else None, weights=plan.weights,
                         random_weights=plan.random_weights, device=device,
                         rep_params=tuple(sorted(plan.rep_params.items())), **extra), part


def run(plan: Plan, out: str | os.PathLike, *, shard: int = 0, shards: int = 1, save_images: bool = False,
        tick: Callable[[Progress], None] | None = None, device: str = "auto", torchrun: bool = False) -> Progress:
    """Compute this shard's rows of ``plan`` that ``out`` does not hold yet; merge and summarise
    when every shard is done.  ``tick(progress)`` after every run (a progress bar).  ``torchrun``:
    the shards are the processes of one torch.distributed job (gloo on the CPU, NCCL on GPUs),
    which wait for each other at the end; rank 0 merges.  Otherwise (one process, or ``--shard``
    job arrays) whoever finds every shard done merges, under a lock file."""
    from .events import Result
    from .request import Reuse, execute

    if not 0 <= shard < shards:
        raise EvaluateError(f"shard {shard} of {shards}: the shard must be in 0…{shards - 1}")
    out = Path(out)
    _check_decoders(plan)
    sources = images_of(plan)                       # a missing folder is said before plan.json is written
    judge = None
    if plan.judge:                                  # a judge that cannot be loaded: said before anything runs
        from .device import resolve_device
        from .judge import JudgeError, load

        try:
            judge = load(plan.judge, resolve_device(device))
        except JudgeError as e:
            raise EvaluateError(str(e)) from None
    check_plan(plan, out)
    readable, prog = [], Progress()
    for src in sources:                             # unreadable images: counted, said, left out
        try:
            check_source(src)
            load_image(src)                         # decoded again per batch: never all held at once
            readable.append(src)
        except ImageError as e:
            prog.unreadable.append(str(e))
    items = work_list(plan, readable)
    mine = shard_of(items, shard, shards)
    done = _done_keys(out)
    todo = [it for it in mine if it.key not in done]
    prog.total, prog.skipped = len(mine), len(mine) - len(todo)
    writer = _Writer(_shard_file(out, shard, shards))
    reuse = Reuse()
    t0 = time.perf_counter()
    try:
        for layer in plan.layers:
            for name in plan.methods:
                group = [it for it in todo if (it.layer, it.method) == (layer, name)]
                if not group:
                    continue
                for req, part in _requests(plan, group, device):
                    started = time.perf_counter()
                    images = {src: load_image(src) for src in req.images}
                    results = [ev for ev in execute(req, **reuse.for_requests([req], images))
                               if isinstance(ev, Result)]
                    each = (time.perf_counter() - started) / max(len(part), 1)
                    for it, (image, metrics, record) in zip(part, _per_image(results, len(part)), strict=True):
                        writer.add(_row(it, image, metrics, images[it.image], each, record, judge))
                        _record(out, it, image, metrics, record, save_images or it.image in readable[:SHEET_IMAGES])
                        prog.done += 1
                        prog.seconds = time.perf_counter() - t0
                        if tick is not None:
                            tick(prog)
    finally:
        writer.close()
    if torchrun and shards > 1:
        _barrier(device)                                  # every rank's rows are on disk
        if shard == 0:
            merge(out, items)
            write_summary(plan, out, readable)
            write_sheets(plan, out, readable)
        _barrier(device)
        return prog
    with _lock(out / "merge.lock"):
        if _done_keys(out) >= {it.key for it in items}:
            merge(out, items)
            write_summary(plan, out, readable)
            write_sheets(plan, out, readable)
    return prog


def _barrier(device: str) -> None:
    """Wait for every process of the torchrun job (its process group made here if need be)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    dist.barrier()


class _lock:
    """An exclusive lock file (O_EXCL): one merging process at a time; a stale lock older than
    ten minutes (a killed merger) is taken over."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        deadline = time.monotonic() + 600
        while True:
            try:
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return self
            except FileExistsError:
                try:
                    if time.time() - self.path.stat().st_mtime > 600 or time.monotonic() > deadline:
                        self.path.unlink(missing_ok=True)
                except FileNotFoundError:
                    pass
                time.sleep(0.2)

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


def _check_decoders(plan: Plan) -> None:
    """Every layer a decoder method runs at has a decoder (given, or shipped): said before anything
    is computed, all missing layers at once."""
    from .methods.decoder import find_shipped
    from .methods.registry import method

    if not any(method(m).uses_decoder for m in plan.methods):
        return
    missing = [layer for layer in plan.layers if not plan.decoders.get(layer) and find_shipped(plan.model, layer)
               is None]
    if missing:
        raise EvaluateError(f"no decoder for {plan.model} {', '.join(missing)}: give one per layer (--decoder "
                            "LAYER=FILE.pt; `invgui train-decoder` makes them) or leave the decoder methods out")


def _done_keys(out: Path) -> set[tuple[str, str, str]]:
    keys = set()
    for path in sorted(out.glob("runs*.csv")):
        keys |= {(r["image"], r["layer"], r["method"]) for r in read_rows(path)}
    return keys


def _per_image(results: list, n: int) -> list[tuple[np.ndarray, dict, dict]]:
    """(reconstruction, metrics, record) per image: optimisation gives a Result each, a decoder's
    forward pass one Result of them all (its ``*_per_image`` metrics)."""
    from .events import per_image_metrics

    if len(results) == n:
        return [(r.images[0], r.metrics, r.record) for r in results]
    (res,) = results
    return [(res.images[i], m, res.record) for i, m in enumerate(per_image_metrics(res.metrics, n))]


def _row(it: Item, image: np.ndarray, m: dict, original: np.ndarray, seconds: float, record: dict,
         judge=None) -> dict:
    """The CSV row of one run: its metrics and ‖x − x̂‖ against the original, centre-cropped and
    resized to the reconstruction's side as every method's input is (and the judge's distance
    between the two, when there is a judge)."""
    img = np.clip(image, 0, 1)
    target = resize_center_crop(original, img.shape[0])
    distance = float(np.linalg.norm((img - target).astype(np.float64)))
    perceptual = judge.distance(target, img) if judge is not None else math.nan
    return {"index": it.index, "image": it.image, "layer": it.layer, "method": it.method,
            "representation_error": repr(float(m.get("representation_error", math.nan))),
            "psnr": repr(float(m.get("psnr", math.nan))), "ssim": repr(float(m.get("ssim", math.nan))),
            "distance": repr(distance), "side": img.shape[0], "iterations": int(m.get("iterations", 0)),
            "seconds": f"{seconds:.4f}", "device": str(record.get("device", "")), "perceptual": repr(perceptual)}


def _record(out: Path, it: Item, image: np.ndarray, m: dict, record: dict, save_images: bool) -> None:
    folder = out / "records"
    folder.mkdir(exist_ok=True)
    rec = {"index": it.index, "image": it.image, "layer": it.layer, "method": it.method,
           "metrics": {k: v for k, v in m.items() if isinstance(v, (int, float, str))},
           "record": json.loads(json.dumps(record, default=str))}
    (folder / f"{it.index:07d}.json").write_text(json.dumps(rec), encoding="utf-8")
    if save_images:
        (out / "images").mkdir(exist_ok=True)
        save_png(out / "images" / f"{it.index:07d}.png", np.clip(image, 0, 1))


def merge(out: Path, items: list[Item]) -> Path:
    """Every shard's rows (and runs.csv's own) as runs.csv, in work-list order, each item once."""
    by_key: dict[tuple, dict] = {}
    for path in sorted(out.glob("runs*.csv")):
        for r in read_rows(path):
            by_key.setdefault((r["image"], r["layer"], r["method"]), r)
    tmp = out / "runs.csv.tmp"
    with tmp.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(FIELDS)
        for it in items:
            r = by_key[it.key]
            w.writerow([r[k] for k in FIELDS])
    tmp.replace(out / "runs.csv")
    for path in out.glob("runs.shard-*.csv"):
        path.unlink()
    return out / "runs.csv"


def write_sheets(plan: Plan, out: Path, sources: list[str], k: int = SHEET_IMAGES) -> list[Path]:
    """sheet_LAYER.png per layer: the first ``k`` images (columns) over each method's
    reconstruction of them (rows), from the PNGs the runs kept."""
    from .compare import labelled_grid, method_word

    first = sources[:k]
    by_key = {(r["image"], r["layer"], r["method"]): int(r["index"]) for r in read_rows(out / "runs.csv")}
    written = []
    for layer in plan.layers:
        cells: list[list[np.ndarray | None]] = [[resize_center_crop(load_image(s), 128) for s in first]]
        for name in plan.methods:
            row: list[np.ndarray | None] = []
            for src in first:
                png = out / "images" / f"{by_key.get((src, layer, name), -1):07d}.png"
                row.append(load_image(str(png)) if png.is_file() else None)
            cells.append(row)
        sheet = labelled_grid(cells, ["photo", *(method_word(m) for m in plan.methods)],
                              [Path(s).stem if not s.startswith("sample:") else s[7:] for s in first])
        path = out / f"sheet_{layer}.png"
        save_png(path, sheet.astype(np.float32) / 255.0)
        written.append(path)
    return written


def write_summary(plan: Plan, out: Path, sources: list[str]) -> list[dict]:
    """summary.csv: mean ± std per method × layer over the evaluated images ``sources``; N over
    them at the evaluation side of each layer's runs."""
    rows = read_rows(out / "runs.csv")
    table = summarise(plan, rows, sources)
    with (out / "summary.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(table)
    return table


def summarise(plan: Plan, rows: list[dict], sources: list[str]) -> list[dict]:
    """Mean ± std per method × layer (in the plan's order) of the normalised reconstruction error —
    each row's ‖x − x̂‖ over N at that row's side — the representation error, PSNR and SSIM."""
    from . import representations as R

    rep = R.get(plan.model, weights=plan.weights, random_weights=plan.random_weights,
                params=plan.rep_params or None)
    n_at: dict[int, float] = {}
    table = []
    for layer in plan.layers:
        for name in plan.methods:
            mine = [r for r in rows if (r["layer"], r["method"]) == (layer, name)]
            if not mine:
                continue
            for side in {int(r["side"]) for r in mine} - set(n_at):
                n_at[side] = set_distance(sources, side)
            vals = {k: np.array([float(r[k]) for r in mine]) for k in ("representation_error", "psnr", "ssim",
                                                                       "perceptual")}
            vals["nre"] = np.array([float(r["distance"]) / n_at[int(r["side"])] for r in mine])
            sides = {int(r["side"]) for r in mine}
            entry: dict[str, Any] = {"method": name, "layer": layer,
                                     "depth": round(rep.layer_info(layer, rep.input_size).relative_depth, 4),
                                     "n": len(mine),
                                     # N at the rows' side: a row's own normalised error is its distance / N
                                     "set_distance": n_at[sides.pop()] if len(sides) == 1 else math.nan}
            for k in ("nre", "representation_error", "psnr", "ssim", "perceptual"):
                entry[f"{k}_mean"], entry[f"{k}_std"] = float(np.mean(vals[k])), float(np.std(vals[k]))
            table.append(entry)
    return table


@dataclass
class Results:
    """A results folder as a viewer reads it (nothing in it is changed)."""

    folder: Path
    plan: Plan
    rows: list[dict[str, str]]          # every finished row of runs.csv and any shards, by index
    summary: list[dict[str, str]]       # summary.csv ([] until every run is done)

    @property
    def complete(self) -> bool:
        return bool(self.summary)

    def image(self, index: int) -> Path | None:
        """The reconstruction of run ``index``, when it was kept."""
        path = self.folder / "images" / f"{int(index):07d}.png"
        return path if path.is_file() else None

    def sheet(self, layer: str) -> Path | None:
        path = self.folder / f"sheet_{layer}.png"
        return path if path.is_file() else None

    def describe(self) -> str:
        p = self.plan
        params = p.params or {}
        what = [f"{p.model}{' (random weights)' if p.random_weights else ''}", f"layers {', '.join(p.layers)}",
                f"methods {', '.join(p.methods)}", f"images {p.data}" + (f" (first {p.limit})" if p.limit else "")]
        if params and any(_method_uses_params(m) for m in p.methods):
            what.append(f"{params.get('iters')} iterations, {params.get('optimizer')} lr {params.get('lr')}")
        if p.judge:
            from .judge import describe

            what.append(f"judge {describe(p.judge)}")
        state = (f"{len(self.rows)} runs, complete" if self.complete else
                 f"{len(self.rows)} runs so far; summary.csv is written when every run is done (rerun the same "
                 "`invgui evaluate` command to finish a stopped one)")
        return " · ".join(what) + " — " + state


def _method_uses_params(name: str) -> bool:
    from .methods.registry import method

    try:
        return method(name).params_cls is not None
    except InvguiError:                  # a method this version does not know
        return False


def open_results(folder: str | os.PathLike) -> Results:
    """Read a results folder of ``invgui evaluate``: its plan, rows so far and summary."""
    folder = Path(folder)
    path = folder / "plan.json"
    if not path.is_file():
        raise EvaluateError(f"{folder}: not an invgui evaluate results folder (it has no plan.json)")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(Plan)}
        given: dict[str, Any] = {k: (tuple(v) if k in ("layers", "methods") else v) for k, v in d.items() if k in known}
        plan = Plan(**given)
    except (ValueError, TypeError, OSError) as e:
        raise EvaluateError(f"{path}: not readable ({e})") from None
    by_key: dict[tuple, dict] = {}
    for rows_file in sorted(folder.glob("runs*.csv")):
        for r in read_rows(rows_file, mend=False):
            by_key.setdefault((r["image"], r["layer"], r["method"]), r)
    rows = sorted(by_key.values(), key=lambda r: int(r["index"]))
    summary = read_summary(folder / "summary.csv") if (folder / "summary.csv").is_file() else []
    return Results(folder, plan, rows, summary)


def latex_text(text: str) -> str:
    """Plain text for LaTeX: its special characters escaped (model and layer names have "_"), ±
    as math."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$"}
    return "".join(special.get(c, c) for c in text)


def summary_latex(rows: list[dict], caption: str = "") -> str:
    """The summary as a LaTeX table (booktabs): mean ± std per method × layer, the best mean of each
    measure per layer in bold (lowest, or highest for PSNR and SSIM); ``caption`` is plain text."""
    from .compare import method_word

    cols = measures(rows)
    higher = {"psnr", "ssim"}
    best: dict[tuple[str, str], float] = {}
    for r in rows:
        for k, _, _ in cols:
            v = float(r[k + "_mean"])
            old = best.get((r["layer"], k))
            if old is None or (v > old if k in higher else v < old):
                best[(r["layer"], k)] = v
    heads = {"nre": "rec. error", "representation_error": "rep. error", "psnr": "PSNR (dB)", "ssim": "SSIM",
             "perceptual": "judge dist."}
    lines = [r"\begin{table}", r"\centering", r"\begin{tabular}{ll" + "r" * (1 + len(cols)) + "}", r"\toprule",
             "layer & method & $n$ & " + " & ".join(heads[k] for k, _, _ in cols) + r" \\", r"\midrule"]
    last = None
    for r in rows:
        if last is not None and r["layer"] != last:
            lines.append(r"\midrule")
        last = r["layer"]
        cells = []
        for k, _, fmt in cols:
            v = float(r[k + "_mean"])
            text = f"{format(v, fmt)} $\\pm$ {format(float(r[k + '_std']), fmt)}"
            cells.append(rf"\textbf{{{text}}}" if v == best[(r["layer"], k)] else text)
        lines.append(f"{latex_text(r['layer'])} & {latex_text(method_word(r['method']))} & {r['n']} & "
                     + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{latex_text(caption)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def set_distance(sources: list[str], side: int) -> float:
    """N at ``side``: the mean distance between pairs of the evaluated images — all of them up to
    N_IMAGES, beyond that N_IMAGES drawn with a fixed seed (an estimate over ~2 million pairs;
    every pair of 50,000 ImageNet images would be 1.25 billion distances and 90 GB of pixels).
    The images are held as float32 rows, one decoded at a time."""
    import random

    from .metrics import mean_pairwise_distance_rows

    pick = sources if len(sources) <= N_IMAGES else sorted(random.Random(0).sample(sources, N_IMAGES))
    if len(pick) < 2:
        return math.nan
    flat = np.empty((len(pick), side * side * 3), np.float32)
    for i, src in enumerate(pick):
        flat[i] = resize_center_crop(load_image(src), side).reshape(-1)
    return mean_pairwise_distance_rows(flat)


# (key in summary.csv without _mean/_std, heading, format) of the summary's measures, in table order
MEASURES = (("nre", "norm. rec. error", ".3f"), ("representation_error", "rep. error", ".3f"),
            ("psnr", "PSNR dB", ".1f"), ("ssim", "SSIM", ".3f"), ("perceptual", "judge dist.", ".3f"))


def read_summary(path: Path) -> list[dict[str, str]]:
    with Path(path).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def measures(rows: list[dict]) -> list[tuple[str, str, str]]:
    """The measures a summary has: the judge's distance only when it was measured."""
    return [m for m in MEASURES if any(math.isfinite(float(r.get(m[0] + "_mean") or "nan")) for r in rows)]


def mean_pm_std(r: dict, key: str, fmt: str) -> str:
    return f"{format(float(r[key + '_mean']), fmt)} ± {format(float(r[key + '_std']), fmt)}"


def summary_table(path: Path) -> str:
    """summary.csv as the printed table: mean ± std per method × layer."""
    rows = read_summary(path)
    cols = measures(rows)
    widths = [max(len(h), 15) for _, h, _ in cols]
    head = f"{'method':<10} {'layer':<14} {'n':>5} " + " ".join(f"{h:>{w}}" for (_, h, _), w in zip(cols, widths,
                                                                                                   strict=True))
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['method']:<10} {r['layer']:<14} {r['n']:>5} " + " ".join(
            f"{mean_pm_std(r, k, fmt):>{w}}" for (k, _, fmt), w in zip(cols, widths, strict=True)))
    return "\n".join(lines)
