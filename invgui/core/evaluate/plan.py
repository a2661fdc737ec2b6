"""An evaluation's plan: what it computes (:class:`Plan`), its work list and shares, and the
results folder's ``plan.json`` with the image set it froze (a rerun with another plan is refused,
the differences named)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvguiError
from ..files import TMP_PREFIX, atomic_write
from ..images import ImageError, check_source, load_image, path_problem, scan_images, skipped_words
from ..methods.base import RunRequest, freeze_params
from ..methods.optimize_params import OptimizeParams
from ..params import to_dict


class EvaluateError(InvguiError):
    pass


@dataclass(frozen=True)
class Plan:
    """What an evaluation computes: every result depends on these and on nothing else.  What every
    run shares — the representation (model, weights, random weights, its own parameters) and the
    optimisation parameters, typed — is a request ``template`` each method makes its runs from
    (``Method.request``); :meth:`of` builds a plan from those fields, :meth:`to_dict` writes them
    flat (plan.json, the same file as before the template)."""

    template: RunRequest                            # model, weights, random_weights, rep_params, params
    layers: tuple[str, ...]
    methods: tuple[str, ...]
    data: str
    limit: int = 0                                  # the first N images (0: all)
    decoders: dict = field(default_factory=dict)    # layer → decoder file or shipped name ("" : the shipped one)
    size: int = 0                                   # input side (0: the model's own; a decoder's own)
    judge: str = ""                                 # the perceptual distance's network (core.judge; "": none)

    @classmethod
    def of(cls, model: str, layers: Sequence[str], methods: Sequence[str], data: str, limit: int = 0,
           params: OptimizeParams | dict | None = None, decoders: dict | None = None, size: int = 0,
           weights: str | None = None, random_weights: bool = False, rep_params: dict | None = None,
           judge: str = "") -> Plan:
        """A plan from its fields (``params``: OptimizeParams or a dict of their fields, checked;
        none: the optimisation's defaults)."""
        template = RunRequest(model=model, weights=weights, random_weights=random_weights,
                              rep_params=freeze_params(rep_params), params=params or None)
        return cls(template, tuple(layers), tuple(methods), data, limit, dict(decoders or {}), size, judge)

    model = property(lambda self: self.template.model)
    weights = property(lambda self: self.template.weights)
    random_weights = property(lambda self: self.template.random_weights)

    @property
    def rep_params(self) -> dict[str, Any]:
        return self.template.rep_params_dict() or {}

    @property
    def params(self) -> OptimizeParams:
        """The optimisation parameters every optimising run takes (before the plan's side)."""
        return self.template.params if self.template.params is not None else OptimizeParams()

    def to_dict(self) -> dict[str, Any]:
        """plan.json's fields, flat."""
        return {"model": self.model, "layers": list(self.layers), "methods": list(self.methods), "data": self.data,
                "limit": self.limit, "params": to_dict(self.template.params) if self.template.params else {},
                "decoders": dict(self.decoders), "size": self.size, "weights": self.weights,
                "random_weights": self.random_weights, "rep_params": self.rep_params, "judge": self.judge}

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
        from ..images import SAMPLE_SET

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
    try:
        plan = Plan.of(**given)
    except InvguiError as e:                   # parameters this version does not take, out of range, …
        raise EvaluateError(f"{path}: {e}") from None
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


def validate(plan: Plan, shard: int = 0, shards: int = 1) -> None:
    """The checks of the plan itself, before any file is read or written."""
    from ..methods.registry import method

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


def _refuse_changes(plan: Plan, frozen: ImageSetRecord, listed: list[str]) -> None:
    changes = _image_changes(frozen, listed)
    if changes:
        raise EvaluateError(f"the images under {plan.data} changed since this evaluation began ({'; '.join(changes)}): "
                            "its rows are numbered over the images it began with, so it cannot resume over others; "
                            "put the folder back as it was, or give another --out to evaluate it as it is now")


def _check_decoders(plan: Plan) -> None:
    """Every layer a decoder method runs at has a decoder (given, or shipped): said before anything
    is computed, all missing layers at once."""
    from ..methods.decoder import find_shipped
    from ..methods.registry import method

    if not any(method(m).uses_decoder for m in plan.methods):
        return
    missing = [layer for layer in plan.layers if not plan.decoders.get(layer) and find_shipped(plan.model, layer)
               is None]
    if missing:
        raise EvaluateError(f"no decoder for {plan.model} {', '.join(missing)}: give one per layer (--decoder "
                            "LAYER=FILE.pt; `invgui train-decoder` makes them) or leave the decoder methods out")
