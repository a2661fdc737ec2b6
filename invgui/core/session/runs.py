"""A run: what a user asked for (its :class:`~invgui.core.request.RunRequest`) and what came back (the
:class:`Result`), with an id, a name and a state; and how runs are named so two never read alike."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..events import Result
from ..methods.base import DEFAULT_IMAGE, RunRequest, freeze_params
from ..methods.registry import DEFAULT_METHOD, method
from ..methods.registry import method as method_spec
from ..params import from_dict, to_dict
from ..results import summary, where

STATES = ("queued", "running", "done", "stopped", "failed")


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
        asked = {k: fields.pop(k) for k in ("decoder", "size") if k in fields}
        template = RunRequest(images=(image,), rep_params=freeze_params(rep_params), **fields)
        return cls(request=method_spec(method).request(template, params=_typed_params(method, params), **asked),
                   **own)

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
        spec = method_spec(changes.pop("method", self.method))
        params = _typed_params(spec.name, changes.pop("params", self.params))
        return Run(request=spec.request(self.request, params=params, **changes))

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
