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
import io
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
from .images import (
    TMP_PREFIX,
    ImageError,
    atomic_write,
    check_source,
    load_image,
    path_problem,
    resize_center_crop,
    save_png,
    scan_images,
    skipped_words,
)

FIELDS = ("index", "image", "layer", "method", "representation_error", "psnr", "ssim", "distance", "side",
          "iterations", "seconds", "device", "perceptual", "warnings")
OLD_FIELDS = FIELDS[:-1]           # results files of invgui before the warnings column: read, and mended on a rerun
SHEET_IMAGES = 8                   # the contact sheets show the first K images (their reconstructions kept)
SUMMARY_FIELDS = ("method", "layer", "depth", "n", "nre_mean", "nre_std", "representation_error_mean",
                  "representation_error_std", "psnr_mean", "psnr_std", "ssim_mean", "ssim_std", "perceptual_mean",
                  "perceptual_std", "set_distance")
# Rows end in CRLF (RFC 4180): the csv module quotes a field holding a character of the line end
# only, so with "\n" alone an image name holding "\r" was written bare and read back as two rows.
ROW_END = "\r\n"
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
    return listing_of(plan)[0]


def listing_of(plan: Plan) -> tuple[list[str], list[str]]:
    """(the images ``plan`` evaluates, the files under its folder that no image format is named by)."""
    if plan.data == "samples":
        from .images import SAMPLE_SET

        found, others = [f"sample:{n}" for n in SAMPLE_SET], []
    else:
        try:
            listing = scan_images(plan.data)
        except ImageError as e:
            raise EvaluateError(str(e)) from None
        found, others = [str(p) for p in listing.images], [str(p) for p in listing.others]
    if plan.limit:
        found = found[:plan.limit]
    if not found:
        raise EvaluateError(f"{plan.data}: no images" + (f" ({skipped_words(others, [])})" if others else ""))
    return found, others


def work_list(plan: Plan, images: list[str]) -> list[Item]:
    """Every run of ``plan`` over ``images`` (the image set frozen in plan.json when the evaluation
    began): a row's index is its place here, and the set cannot change under a results folder."""
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


# -- the results folder: plan.json and the image set it froze --------------------------------------

_PLAN_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,), "layers": (list,), "methods": (list,), "data": (str,), "limit": (int,), "params": (dict,),
    "decoders": (dict,), "size": (int,), "weights": (str, type(None)), "random_weights": (bool,),
    "rep_params": (dict,), "judge": (str,)}


@dataclass(frozen=True)
class ImageSetRecord:
    """The images an evaluation began with, frozen in plan.json: the readable ones (the rows'
    indices count them) and the unreadable ones with the reason."""

    readable: tuple[str, ...]
    unreadable: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"readable": list(self.readable), "unreadable": [list(u) for u in self.unreadable]}

    @property
    def all(self) -> set[str]:
        return set(self.readable) | {s for s, _ in self.unreadable}


def read_plan_file(path: Path) -> tuple[Plan, ImageSetRecord | None, dict]:
    """plan.json checked field by field: (the plan, the image set it froze — None in a folder of an
    older invgui —, the file's dict).  Every problem names the file and the field."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise EvaluateError(path_problem(path, e)) from None
    try:
        d = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise EvaluateError(f"{path}: not readable (not UTF-8 text)") from None
    except RecursionError:
        raise EvaluateError(f"{path}: not readable (nested too deeply)") from None
    except ValueError as e:
        raise EvaluateError(f"{path}: not readable ({e})") from None
    if not isinstance(d, dict):
        raise EvaluateError(f"{path}: not an invgui evaluate plan (a JSON {type(d).__name__}, not an object)")

    def bad(key: str, want: str) -> EvaluateError:
        return EvaluateError(f"{path}: field {key!r} should be {want}, not {str(d.get(key))[:60]!r}")

    for key in ("model", "layers", "methods", "data"):
        if key not in d:
            raise EvaluateError(f"{path}: field {key!r} is missing")
    for key, types in _PLAN_TYPES.items():
        if key in d and (not isinstance(d[key], types) or (bool in (type(d[key]),) and bool not in types)):
            raise bad(key, " or ".join("null" if t is type(None) else t.__name__ for t in types))
    for key in ("layers", "methods"):
        if not d[key] or not all(isinstance(x, str) and x for x in d[key]):
            raise bad(key, "a list of names")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in d.get("decoders", {}).items()):
        raise bad("decoders", "an object of layer → file")
    if d.get("limit", 0) < 0 or d.get("size", 0) < 0:
        raise bad("limit" if d.get("limit", 0) < 0 else "size", "a count ≥ 0")
    given: dict[str, Any] = {k: (tuple(v) if k in ("layers", "methods") else v) for k, v in d.items()
                             if k in _PLAN_TYPES}
    plan = Plan(**given)
    images = None
    if "image_set" in d:
        s = d["image_set"]
        ok = (isinstance(s, dict) and isinstance(s.get("readable"), list) and isinstance(s.get("unreadable"), list)
              and all(isinstance(x, str) for x in s["readable"])
              and all(isinstance(u, list) and len(u) == 2 and all(isinstance(x, str) for x in u)
                      for u in s["unreadable"]))
        if not ok:
            raise bad("image_set", "an object of readable and unreadable images")
        images = ImageSetRecord(tuple(s["readable"]), tuple((u[0], u[1]) for u in s["unreadable"]))
    return plan, images, d


def _check_folder(out: Path) -> None:
    """``out`` is a new or empty folder, or an evaluation's (it has plan.json): a non-empty folder of
    other files (a mistyped ``--out .``) is refused before anything is written into it."""
    if out.exists() and not out.is_dir():
        raise EvaluateError(f"{out}: is a file, not a results folder; give a folder for --out")
    if not out.is_dir() or (out / "plan.json").exists():
        return
    try:
        theirs = sorted(p.name for p in out.iterdir() if not p.name.startswith(TMP_PREFIX))
    except OSError as e:
        raise EvaluateError(path_problem(out, e)) from None
    theirs = [n for n in theirs if n != "plan.json"]       # written by a process that started beside this one
    if theirs:
        raise EvaluateError(f"{out} is not an invgui evaluate results folder (it has no plan.json) and is not empty "
                            f"({', '.join(theirs[:3])}{', …' if len(theirs) > 3 else ''}): nothing was written; "
                            "give a new or empty folder for --out")


def _publish_plan(path: Path, content: dict) -> bool:
    """Create plan.json with ``content`` unless it exists (False then): a unique temporary, linked
    into place, so two processes starting together never see a half-written plan, and the first
    one's plan is the one both then agree on."""
    import tempfile

    text = json.dumps(content, indent=1)
    fd, name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}plan-", suffix=".json", dir=path.parent)   # unique to its writer
    os.close(fd)
    tmp = Path(name)
    tmp.write_text(text, encoding="utf-8")
    try:
        os.link(tmp, path)                       # atomic, and fails when plan.json exists
        return True
    except FileExistsError:
        return False
    except OSError:                              # a file system without hard links: first writer wins
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        os.close(fd)
        atomic_write(path, lambda t: Path(t).write_text(text, encoding="utf-8"))
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _image_changes(frozen: ImageSetRecord, now: list[str]) -> list[str]:
    """What changed between the images an evaluation began with and those listed now, in words."""
    then, listed = frozen.all, set(now)
    added, removed = sorted(listed - then), sorted(then - listed)
    readable_now = []
    for src, _ in frozen.unreadable:
        if src in listed:
            try:
                check_source(src)
                load_image(src)
                readable_now.append(src)
            except ImageError:
                pass

    def few(names: list[str]) -> str:
        return ", ".join(Path(n).name for n in names[:3]) + (", …" if len(names) > 3 else "")

    out = []
    for names, what in ((added, "added"), (removed, "removed"), (readable_now, "readable now (unreadable then)")):
        if names:
            out.append(f"{len(names)} {what}: {few(names)}")
    return out


def check_plan(plan: Plan, out: Path, images: ImageSetRecord | None = None) -> ImageSetRecord | None:
    """Write the plan and its image set into a new results folder, or check an old one's: another
    plan, or another image set under the same folder, is refused with the differences named.
    Returns the image set the folder holds (None: an old folder without one, and none given)."""
    _check_folder(out)
    path = out / "plan.json"
    if not path.is_file():
        if images is None:
            return None
        try:
            out.mkdir(parents=True, exist_ok=True)
            if _publish_plan(path, {**plan.to_dict(), "image_set": images.to_dict()}):
                return images
        except OSError as e:                  # a read-only or full place: said with the folder, not a temporary
            raise EvaluateError(f"{out}: cannot write the results folder here ({e.strerror or e}); give another "
                                "--out") from None
    old_plan, old_images, d = read_plan_file(path)
    diff = plan.differences({k: v for k, v in d.items() if k != "image_set"})
    if diff:
        raise EvaluateError(f"{out} holds an evaluation with other arguments ({'; '.join(diff)}): give another "
                            "--out, or the same arguments to resume it")
    if old_images is None and images is not None:      # a folder of an older invgui: its set is the one now
        atomic_write(path, lambda t: Path(t).write_text(json.dumps({**d, "image_set": images.to_dict()}, indent=1),
                                                         encoding="utf-8"))
        return images
    return old_images


@dataclass
class Progress:
    done: int = 0                 # rows written (this process)
    skipped: int = 0              # rows already there (resumed)
    total: int = 0                # rows of this shard
    unreadable: list[str] = field(default_factory=list)
    seconds: float = 0.0
    others: list[str] = field(default_factory=list)     # files of the folder no image format is named by
    damaged: list[str] = field(default_factory=list)    # rows of this process's file left out, to be redone

    def skipped_words(self) -> str:
        """What the image folder's listing left out and why ("" when nothing)."""
        return skipped_words(self.others, self.unreadable)


def _requests(plan: Plan, items: list[Item], device: str = "auto", side: int = 0
              ) -> Iterator[tuple[Any, list[Item]]]:
    """The requests that compute ``items`` (all of one layer and method) at input side ``side``
    (0: ``plan.size``): optimisation and hybrid runs batched (at most 64 rows of images ×
    restarts), decoders ``DECODER_BATCH`` a pass."""
    from .methods.optimize import batches
    from .methods.optimize_params import OptimizeParams
    from .methods.registry import method
    from .params import from_dict
    from .request import RunRequest

    spec = method(items[0].method)
    params = from_dict(OptimizeParams, plan.params) if plan.params else OptimizeParams()
    side = side or plan.size
    if side:
        params = dataclasses.replace(params, size=side)
    decoder = plan.decoders.get(items[0].layer) or None
    if spec.one_pass:
        chunks = [range(i, min(i + DECODER_BATCH, len(items))) for i in range(0, len(items), DECODER_BATCH)]
    else:
        chunks = batches(len(items), params.restarts)
    for chunk in chunks:
        part = [items[i] for i in chunk]
        extra: dict[str, Any] = {"decoder": decoder, "size": side} if spec.uses_decoder else {}
        yield RunRequest(method=spec.name, model=plan.model, layer=items[0].layer, images=tuple(i.image for i in part),
                         params=params if spec.params_cls is not None else None, weights=plan.weights,
                         random_weights=plan.random_weights, device=device,
                         rep_params=tuple(sorted(plan.rep_params.items())), **extra), part


def validate(plan: Plan, shard: int = 0, shards: int = 1) -> None:
    """The checks of the plan itself, before any file is read or written."""
    from .methods.registry import method

    if not 0 <= shard < shards:
        raise EvaluateError(f"shard {shard} of {shards}: the shard must be in 0…{shards - 1}")
    for what, names in (("layers", plan.layers), ("methods", plan.methods)):
        if not names or not all(names):
            raise EvaluateError(f"no {what} given: name at least one (e.g. --{what} "
                                f"{'blocks.1,blocks.5' if what == 'layers' else 'optimize,decoder'})")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise EvaluateError(f"--{what} names {', '.join(twice)} twice")
    for name in plan.methods:
        method(name)                                         # an unknown one is refused, named
    if plan.limit < 0:
        raise EvaluateError(f"--limit {plan.limit}: give a number of images ≥ 1 (or 0 for all of them)")
    if plan.size < 0:
        raise EvaluateError(f"--size {plan.size}: give a side in pixels (or 0 for the model's own)")
    _check_decoders(plan)


def _check_runnable(plan: Plan, image: str, device: str, reuse) -> int:
    """Prepare the first run of every layer × method on one image, computing nothing: a bad
    parameter, layer, size or decoder file is said before the results folder is written.  Returns
    the one input side every method runs at (see :func:`common_side`), checked for every run too."""
    from .request import prepare

    first = {image: load_image(image)}

    def prepared(side: int) -> dict[tuple[str, str], Any]:
        out = {}
        for layer in plan.layers:
            for name in plan.methods:
                req, _ = next(_requests(plan, [Item(0, image, layer, name)], device, side))
                out[(layer, name)] = prepare(req, images=first, rep=reuse.rep(req))
        return out

    preps = prepared(plan.size)
    side = common_side(plan, preps)
    if side != plan.size:
        prepared(side)
    return side


def common_side(plan: Plan, preps: dict[tuple[str, str], Any]) -> int:
    """The one input side of an evaluation, so its methods and layers are compared like for like
    (the same images at the same side, one N): ``--size``, else the model's own (224 px for
    EfficientNet-Lite0) — decoders made of convolutions run at any side.  A decoder with a fully
    connected input takes only the side it was trained at: then that side for every method, and a
    ``--size`` that differs, or two such decoders of different sides, are refused with the reason."""
    fixed = {key: p.size for key, p in preps.items()
             if p.decoder is not None and p.decoder.meta.get("architecture") == "fc"}
    sides = sorted(set(fixed.values()))
    if len(sides) > 1:
        raise EvaluateError("the decoders " + ", ".join(f"of {layer} ({side} px)" for (layer, _), side in fixed.items())
                            + " have fully connected inputs of different sides: the methods could not be compared "
                            "at one side; evaluate them separately")
    if sides:
        (side,) = sides
        if plan.size and plan.size != side:
            layer = next(layer for (layer, _), s in fixed.items() if s == side)
            raise EvaluateError(f"the decoder of {layer} has a fully connected input and takes {side} px only, so "
                                f"every method is compared at {side} px: give --size {side} or leave --size out")
        return side
    (layer, name), prep = next(iter(preps.items()))
    return plan.size or prep.rep.fit_size(prep.rep.input_size)[0]


def _readable(sources: list[str]) -> ImageSetRecord:
    """Which images can be read (each decoded once, then let go: decoded again per batch)."""
    readable, unreadable = [], []
    for src in sources:
        try:
            check_source(src)
            load_image(src)
            readable.append(src)
        except ImageError as e:
            unreadable.append((src, str(e)))
    return ImageSetRecord(tuple(readable), tuple(unreadable))


def run(plan: Plan, out: str | os.PathLike, *, shard: int = 0, shards: int = 1, save_images: bool = False,
        tick: Callable[[Progress], None] | None = None, device: str = "auto", torchrun: bool = False,
        say: Callable[[str], None] | None = None) -> Progress:
    """Compute this shard's rows of ``plan`` that ``out`` does not hold yet; merge and summarise
    when every shard is done.  ``tick(progress)`` after every run (a progress bar); ``say(line)``
    for what the user should know while it runs (a wait for the merge lock).  ``torchrun``: the
    shards are the processes of one torchrun job; rank 0 waits until every rank's rows are on disk
    and merges (the others end when their rows are written); a process whose launcher is gone
    stops.  Otherwise (one process, or ``--shard`` job arrays) whoever finds every shard done
    merges, under a lock file.

    Everything is checked before the folder is written: the plan, the images, a first run of each
    layer × method prepared; a folder that is not an evaluation's is refused.  The image set is
    frozen in plan.json: a rerun over a changed folder is refused, saying what changed."""
    from .events import Result
    from .request import Reuse, execute

    say = say or (lambda line: None)
    parent = os.getppid()
    out = Path(out)
    validate(plan, shard, shards)
    _check_folder(out)
    listed, others = listing_of(plan)                  # a missing folder is said before plan.json is written
    # resuming: the same plan (refused otherwise), and the image set it froze
    images = check_plan(plan, out) if (out / "plan.json").is_file() else None
    if images is not None:
        _refuse_changes(plan, images, listed)
    else:
        images = _readable(listed)
    prog = Progress(others=others, unreadable=[why for _, why in images.unreadable])
    if not images.readable:
        raise EvaluateError(f"{plan.data}: no readable images ({prog.skipped_words()})")
    judge = None
    if plan.judge:                                  # a judge that cannot be loaded: said before anything runs
        from .device import resolve_device
        from .judge import JudgeError, load

        try:
            judge = load(plan.judge, resolve_device(device))
        except JudgeError as e:
            raise EvaluateError(str(e)) from None
    reuse = Reuse()
    side = _check_runnable(plan, images.readable[0], device, reuse)
    frozen = check_plan(plan, out, images)
    if frozen is not None and frozen != images:        # another process began it on another set just now
        _refuse_changes(plan, frozen, list(images.readable) + [s for s, _ in images.unreadable])
    readable = list(images.readable)
    items = work_list(plan, readable)
    mine = shard_of(items, shard, shards)
    need_image = _image_rule(readable, save_images)
    own = _shard_file(out, shard, shards)
    done = _complete_rows(out, items, need_image, own, prog.damaged)
    if prog.damaged:
        say(f"{len(prog.damaged)} damaged or incomplete row(s) left out and run again: "
            + "; ".join(prog.damaged[:3]) + ("; …" if len(prog.damaged) > 3 else ""))
    todo = [it for it in mine if it.key not in done]
    prog.total, prog.skipped = len(mine), len(mine) - len(todo)
    writer = _Writer(own)
    t0 = time.perf_counter()
    try:
        for layer in plan.layers:
            for name in plan.methods:
                group = [it for it in todo if (it.layer, it.method) == (layer, name)]
                if not group:
                    continue
                for req, part in _requests(plan, group, device, side):
                    if torchrun and os.getppid() != parent:
                        raise EvaluateError(_LAUNCHER_GONE)
                    started = time.perf_counter()
                    batch_images = {src: reuse.image(src) for src in req.images}
                    results = [ev for ev in execute(req, **reuse.for_requests([req], batch_images))
                               if isinstance(ev, Result)]
                    each = (time.perf_counter() - started) / max(len(part), 1)
                    for it, (image, metrics, record) in zip(part, _per_image(results, len(part)), strict=True):
                        # the files first, then the row: a row on disk is a run whose files are there
                        try:
                            _record(out, it, image, metrics, record, need_image(it))
                            writer.add(_row(it, image, metrics, batch_images[it.image], each, record, judge))
                        except OSError as e:          # a full disk, a quota, a folder made read-only
                            raise EvaluateError(f"{out}: cannot write run {it.index}'s results "
                                                f"({e.strerror or e}): the rows written so far are kept — make "
                                                "room (or fix the folder's permissions) and run the same "
                                                "command again") from None
                        prog.done += 1
                        prog.seconds = time.perf_counter() - t0
                        if tick is not None:
                            tick(prog)
    finally:
        writer.close()
    if torchrun and shards > 1:
        if shard == 0:                                 # the others' rows: waited for on disk, not in a barrier
            _wait_for_rows(out, items, need_image, parent, say)
            _finish(plan, out, items, readable, need_image)
        return prog
    with _lock(out / "merge.lock", say):
        if len(_complete_rows(out, items, need_image)) == len(items):
            _finish(plan, out, items, readable, need_image)
    return prog


_LAUNCHER_GONE = ("the torchrun launcher of this process is gone (killed?): stopping; the rows written so far are "
                  "kept — run the same command again to resume")


def _refuse_changes(plan: Plan, frozen: ImageSetRecord, listed: list[str]) -> None:
    changes = _image_changes(frozen, listed)
    if changes:
        raise EvaluateError(f"the images under {plan.data} changed since this evaluation began ({'; '.join(changes)}): "
                            "its rows are numbered over the images it began with, so it cannot resume over others; "
                            "put the folder back as it was, or give another --out to evaluate it as it is now")


def _image_rule(readable: list[str], save_images: bool) -> Callable[[Item], bool]:
    """Whether a run's reconstruction is kept as a PNG: every one with ``save_images``, else those
    of the first SHEET_IMAGES images (the contact sheets show them)."""
    sheet = set(readable[:SHEET_IMAGES])
    return lambda it: save_images or it.image in sheet


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


def _finish(plan: Plan, out: Path, items: list[Item], readable: list[str], need_image) -> None:
    merge(out, items, need_image)
    write_summary(plan, out, readable)
    write_sheets(plan, out, readable)


def _proc_start(pid: int) -> str | None:
    """When process ``pid`` started (Linux: /proc's start time in clock ticks), to tell it from a
    later process that got the same number; None where there is no /proc."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        return stat_line.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class _lock:
    """An exclusive lock file (O_EXCL): one merging process at a time.  The file says who holds it
    (pid, host, process start, time): a holder on this machine that is gone (killed during the merge)
    is noticed at once and its lock taken; a holder on another machine (a shared file system)
    that has held it for ten minutes is taken as gone.  A wait is said."""

    STALE_SECONDS = 600

    def __init__(self, path: Path, say: Callable[[str], None] | None = None):
        self.path, self.say = path, say or (lambda line: None)

    def __enter__(self):
        import socket

        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "start": _proc_start(os.getpid()),
                         "time": time.time()}).encode()
        said = False
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder_alive(socket.gethostname())
                if holder is None:
                    self.path.unlink(missing_ok=True)
                    continue
                if not said:
                    self.say(f"waiting for {self.path} ({holder})")
                    said = True
                time.sleep(0.2)
                continue
            try:
                os.write(fd, me)
            finally:
                os.close(fd)
            return self

    def _holder_alive(self, host: str) -> str | None:
        """Who holds the lock, in words; None when the holder is gone."""
        try:
            age = time.time() - self.path.stat().st_mtime
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "just released"
        try:
            owner = json.loads(text)
            pid, where = int(owner["pid"]), str(owner["host"])
        except (ValueError, KeyError, TypeError):
            # being written this instant, or cut short by a kill between creating and writing it
            return None if age > 10 else "being taken"
        if where != host:
            return None if age > self.STALE_SECONDS else f"merging in pid {pid} on {where}"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        if owner.get("start") is not None and _proc_start(pid) not in (None, owner["start"]):
            return None                                   # another process got the number since
        return f"merging in pid {pid}"

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


def _per_image(results: list, n: int) -> list[tuple[np.ndarray, dict, dict]]:
    """(reconstruction, metrics, record) per image: optimisation gives a Result each, a decoder's
    forward pass one Result of them all, split here (each image's warnings its own)."""
    from .results import per_image_results

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

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            w = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
            w.writeheader()
            w.writerows(table)

    atomic_write(out / "summary.csv", write)
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
    damaged: list[str] = field(default_factory=list)   # rows or files left out, a line each

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
        if self.damaged:
            state += (f"; {len(self.damaged)} damaged row(s) or file(s) left out ({self.damaged[0]}) — rerunning the "
                      "command redoes them")
        return " · ".join(what) + " — " + state


def _method_uses_params(name: str) -> bool:
    from .methods.registry import method

    try:
        return method(name).params_cls is not None
    except InvguiError:                  # a method this version does not know
        return False


def open_results(folder: str | os.PathLike) -> Results:
    """Read a results folder of ``invgui evaluate``: its plan, rows so far and summary, each file
    checked (a damaged plan.json is refused naming the file and field; damaged rows and a damaged
    summary are left out and said in ``Results.damaged``)."""
    folder = Path(folder)
    path = folder / "plan.json"
    if not path.is_file():
        raise EvaluateError(f"{folder}: not an invgui evaluate results folder (it has no plan.json)")
    plan, _, _ = read_plan_file(path)
    by_key: dict[tuple, dict] = {}
    damaged: list[str] = []
    for rows_file in sorted(folder.glob("runs*.csv")):
        try:
            read = read_row_file(rows_file)
        except EvaluateError as e:
            damaged.append(str(e))
            continue
        damaged += read.damaged
        for r in read.rows:
            by_key.setdefault((r["image"], r["layer"], r["method"]), r)
    rows = sorted(by_key.values(), key=lambda r: int(r["index"]))
    summary: list[dict[str, str]] = []
    if (folder / "summary.csv").is_file():
        try:
            summary = read_summary(folder / "summary.csv")
        except EvaluateError as e:
            damaged.append(str(e))
    return Results(folder, plan, rows, summary, damaged)


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
    """summary.csv, every row checked (its method, layer and numbers); a damaged one is refused
    naming the file and row."""
    try:
        with Path(path).open(encoding="utf-8", errors="surrogateescape", newline="") as f:
            text = f.read()
    except OSError as e:
        raise EvaluateError(path_problem(path, e)) from None
    rows = list(csv.DictReader(io.StringIO(text.replace("\0", "\ufffd"), newline="")))
    for n, r in enumerate(rows, start=2):
        if list(r) != list(SUMMARY_FIELDS) or None in r.values():
            raise EvaluateError(f"{path}: not an invgui evaluate summary (record {n} has other fields)")
        for k in SUMMARY_FIELDS[2:]:
            try:
                float(r[k])
            except ValueError:
                raise EvaluateError(f"{path}: record {n}: {k} {r[k][:20]!r} is not a number") from None
    return rows


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
