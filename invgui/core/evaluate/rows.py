"""The rows of an evaluation: one CSV row per finished run, appended and flushed at once, read
back with every field checked; the shards' files merged in work-list order; the per-run records."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import atomic_write, save_png
from ..images import path_problem, resize_center_crop
from .plan import EvaluateError, Item

FIELDS = ("index", "image", "layer", "method", "representation_error", "psnr", "ssim", "distance", "side",
          "iterations", "seconds", "device", "perceptual", "warnings")
OLD_FIELDS = FIELDS[:-1]           # results files of invgui before the warnings column: read, and mended on a rerun
# Rows end in CRLF (RFC 4180): the csv module quotes a field holding a character of the line end
# only, so with "\n" alone an image name holding "\r" was written bare and read back as two rows.
ROW_END = "\r\n"


# -- the rows: read with the csv module, every row checked ----------------------------------------

_INTS = ("index", "side", "iterations")
_FLOATS = ("representation_error", "psnr", "ssim", "distance", "seconds", "perceptual")


def _row_problem(row: dict[str, str]) -> str:
    """What is wrong with one row of a results file ("" when nothing is)."""
    for k in ("image", "layer", "method"):
        if not row[k]:
            return f"no {k}"
    for k in _INTS:
        try:
            v = int(row[k])
        except ValueError:
            return f"{k} {row[k][:20]!r} is not an integer"
        if v < 0 or (k == "side" and v == 0):
            return f"{k} {v} is out of range"
    for k in _FLOATS:
        try:
            float(row[k])
        except ValueError:
            return f"{k} {row[k][:20]!r} is not a number"
    return ""


@dataclass
class RowFile:
    """A results file as read: its good rows, and what was left out of it (a line each: where, why)."""

    path: Path
    rows: list[dict[str, str]] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    old: bool = False                   # written by an invgui before the warnings column


def read_row_file(path: Path) -> RowFile:
    """Every row of a results file, each checked (the fields there, integers and numbers where they
    belong); a damaged row — a lost field, a hand edit, a line cut short by a kill, bytes that are
    not UTF-8 in a number — is left out and named, and every other row is kept.  Read with the csv
    module over the whole file: a quoted image name may hold a line break (\n, \r, U+2028)."""
    result = RowFile(path)
    if not path.is_file():
        return result
    try:
        # surrogateescape: a file name that is not UTF-8 (legal on Linux) reads back as it was written
        with path.open(encoding="utf-8", errors="surrogateescape", newline="") as f:   # "\r" in a name stays
            text = f.read()
    except OSError as e:
        raise EvaluateError(path_problem(path, e)) from None
    text = text.replace("\0", "\ufffd")                  # the csv module refuses NUL: the row is damaged instead
    records = list(csv.reader(io.StringIO(text, newline="")))
    if not records or tuple(records[0]) not in (FIELDS, OLD_FIELDS):
        raise EvaluateError(f"{path}: not an invgui evaluate results file (its header differs)")
    fields = tuple(records[0])
    result.old = fields != FIELDS
    cut = not text.endswith("\n")                        # the last line was cut short by a kill
    for n, rec in enumerate(records[1:], start=2):
        if cut and n == len(records):
            result.damaged.append(f"{path.name} record {n}: cut short")
            continue
        if len(rec) != len(fields):
            result.damaged.append(f"{path.name} record {n}: {len(rec)} fields, not {len(fields)}")
            continue
        row = {"warnings": "", **dict(zip(fields, rec, strict=True))}
        why = _row_problem(row)
        if why:
            result.damaged.append(f"{path.name} record {n}: {why}")
        else:
            result.rows.append(row)
    return result


def read_rows(path: Path) -> list[dict[str, str]]:
    """The good rows of a results file (see :func:`read_row_file`), read without changing it: only
    the process that appends to a file mends it (``_complete_rows``)."""
    return read_row_file(path).rows


def _rewrite(path: Path, rows: list[dict[str, str]]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            w = csv.writer(f, lineterminator=ROW_END)
            w.writerow(FIELDS)
            for r in rows:
                w.writerow([r[k] for k in FIELDS])
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


class _Writer:
    """Appends rows to one results file, each flushed to disk before the next run starts."""

    def __init__(self, path: Path):
        new = not path.is_file()
        self.f = path.open("a", encoding="utf-8", errors="surrogateescape", newline="")
        self.w = csv.writer(self.f, lineterminator=ROW_END)
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


_LAUNCHER_GONE = ("the torchrun launcher of this process is gone (killed?): stopping; the rows written so far are "
                  "kept — run the same command again to resume")


def _files_of(out: Path, it: Item, image: bool) -> list[Path]:
    files = [out / "records" / f"{it.index:07d}.json"]
    return files + [out / "images" / f"{it.index:07d}.png"] if image else files


def _complete_rows(out: Path, items: list[Item], need_image: Callable[[Item], bool], own: Path | None = None,
                   damaged: list[str] | None = None) -> dict[tuple[str, str, str], dict[str, str]]:
    """The complete rows of every results file in ``out`` by key (image, layer, method): well formed,
    of an item of ``items`` at its index, with its files on disk.  ``own`` (the file this process
    appends to) is rewritten without its damaged, repeated or incomplete rows — every other row stays
    — and what was left out is added to ``damaged``; other files are only read (their writers mend them)."""
    by_item = {it.key: it for it in items}
    found: dict[tuple[str, str, str], dict[str, str]] = {}
    for path in sorted(out.glob("runs*.csv")):
        read = read_row_file(path)
        keep, seen = [], set()
        for r in read.rows:
            key = (r["image"], r["layer"], r["method"])
            it = by_item.get(key)
            if it is None:                      # not a run of this plan's work list: kept, not counted
                keep.append(r)
                continue
            why = ""
            if int(r["index"]) != it.index:
                why = f"index {r['index']}, but this run is {it.index}"
            elif key in seen:
                why = "a second row of the same run"
            elif not all(f.is_file() for f in _files_of(out, it, need_image(it))):
                why = "its record or image file is missing"
            if why:
                read.damaged.append(f"{path.name}: {Path(it.image).name} {it.layer} {it.method}: {why}")
                continue
            seen.add(key)
            keep.append(r)
            found.setdefault(key, r)
        if own is not None and path == own and (read.damaged or read.old):     # old: rows are appended in the new form
            _rewrite(path, keep)
            if damaged is not None:
                damaged.extend(read.damaged)
    return found


def _wait_for_rows(out: Path, items: list[Item], need_image: Callable[[Item], bool], parent: int,
                   say: Callable[[str], None]) -> None:
    """Rank 0 of a torchrun job: wait until every item's row is on disk, or stop when the launcher
    is gone (a killed torchrun left the others' rows unfinished; nothing would ever come)."""
    said = False
    while len(_complete_rows(out, items, need_image)) < len(items):
        if os.getppid() != parent:
            raise EvaluateError(_LAUNCHER_GONE)
        if not said:
            say("waiting for the other processes' rows")
            said = True
        time.sleep(1.0)


def _per_image(results: list, n: int) -> list[tuple[np.ndarray, dict, dict]]:
    """(reconstruction, metrics, record) per image: optimisation gives a Result each, a decoder's
    forward pass one Result of them all, split here (each image's warnings its own)."""
    from ..results import per_image_results

    return [(r.images[0], r.metrics, r.record) for r in per_image_results(results, n)]


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
            "seconds": f"{seconds:.4f}", "device": str(record.get("device", "")), "perceptual": repr(perceptual),
            "warnings": "; ".join(str(w) for w in record.get("warnings") or [])}


def _record(out: Path, it: Item, image: np.ndarray, m: dict, record: dict, save_image: bool) -> None:
    """The run's record (and its PNG), each written whole (a temporary moved into place)."""
    folder = out / "records"
    folder.mkdir(exist_ok=True)
    rec = {"index": it.index, "image": it.image, "layer": it.layer, "method": it.method,
           "metrics": {k: v for k, v in m.items() if isinstance(v, (int, float, str))},
           "record": json.loads(json.dumps(record, default=str))}
    if save_image:
        (out / "images").mkdir(exist_ok=True)
        save_png(out / "images" / f"{it.index:07d}.png", np.clip(image, 0, 1))
    text = json.dumps(rec, ensure_ascii=True)
    atomic_write(folder / f"{it.index:07d}.json", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def merge(out: Path, items: list[Item], need_image: Callable[[Item], bool] = lambda it: False) -> Path:
    """Every shard's complete rows (and runs.csv's own) as runs.csv, in work-list order, each item
    once; the shard files go once runs.csv is in place."""
    by_key = _complete_rows(out, items, need_image)
    _rewrite(out / "runs.csv", [by_key[it.key] for it in items])
    for path in out.glob("runs.shard-*.csv"):
        path.unlink()
    return out / "runs.csv"
