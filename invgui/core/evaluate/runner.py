"""Running an evaluation: the requests of a work list (each method's own, batched), the shard's
rows computed and written, the lock that lets one process merge, and the summary at the end."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..images import load_image, skipped_words
from .plan import (
    EvaluateError,
    Item,
    Plan,
    _check_folder,
    _readable,
    _refuse_changes,
    _shard_file,
    check_plan,
    listing_of,
    shard_of,
    validate,
    work_list,
)
from .report import SHEET_IMAGES, write_sheets, write_summary
from .rows import _LAUNCHER_GONE, _complete_rows, _per_image, _record, _row, _wait_for_rows, _Writer, merge


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
    restarts), decoders a pass of ``PASS_IMAGES`` (``Method.chunks``)."""
    from ..methods.registry import method

    spec = method(items[0].method)
    params = plan.params
    side = side or plan.size
    if side:
        params = dataclasses.replace(params, size=side)
    template = plan.template.replace(layer=items[0].layer, device=device)
    for chunk in spec.chunks(len(items), params):
        part = [items[i] for i in chunk]
        yield spec.request(template, images=tuple(i.image for i in part), params=params,
                           decoder=plan.decoders.get(items[0].layer) or None, size=side), part


def _check_runnable(plan: Plan, image: str, device: str, reuse) -> int:
    """Prepare the first run of every layer × method on one image, computing nothing: a bad
    parameter, layer, size or decoder file is said before the results folder is written.  Returns
    the one input side every method runs at (see :func:`common_side`), checked for every run too."""
    from ..request import prepare

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
    from ..events import Result
    from ..request import Reuse, execute

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
        from ..device import resolve_device
        from ..judge import JudgeError, load

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


def _image_rule(readable: list[str], save_images: bool) -> Callable[[Item], bool]:
    """Whether a run's reconstruction is kept as a PNG: every one with ``save_images``, else those
    of the first SHEET_IMAGES images (the contact sheets show them)."""
    sheet = set(readable[:SHEET_IMAGES])
    return lambda it: save_images or it.image in sheet


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
