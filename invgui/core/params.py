"""Parameters declared once, as frozen dataclasses with widget metadata.

A parameter field carries its GUI/CLI description in ``field.metadata``:
``label``, ``tooltip``, ``min``, ``max``, ``step``, ``choices``, ``group``.
The GUI builds dock forms from it (``invgui.ui.widgets.param_form``), the CLI builds
flags from it (:func:`add_arguments` / :func:`from_arguments`), JSON records and
sessions serialise it (:func:`to_dict` / :func:`from_dict`).  Presets are named
instances of the dataclass (see :class:`Presets`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import typing
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import InvguiError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def param(default: Any, *, label: str | None = None, tooltip: str = "", min: float | None = None,
          max: float | None = None, step: float | None = None, choices: tuple | None = None,
          group: str = "", cli: bool = True, special: str | None = None,
          applies: tuple[str, tuple] | None = None) -> Any:
    """A dataclass field with widget metadata (``special``: how the widget shows the minimum;
    ``applies``: (another field, its values) for which this one has an effect — a form disables it
    otherwise, e.g. the DIP's width under the Fourier prior)."""
    meta = {"label": label, "tooltip": tooltip, "min": min, "max": max, "step": step,
            "choices": choices, "group": group, "cli": cli, "special": special, "applies": applies}
    return field(default=default, metadata=meta)


def field_type(cls: type, f: dataclasses.Field) -> Any:
    """The resolved type of a field (annotations are strings under ``from __future__``)."""
    return _type_hints(cls)[f.name]


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    # Resolving string annotations evaluates them (~1 ms per call): once per class is enough.
    return typing.get_type_hints(cls)


def _is_tuple_of_float(tp: Any) -> bool:
    return typing.get_origin(tp) is tuple


def parse_floats(text: str) -> tuple[float, ...]:
    """Parse ``"0.25, 0.75"`` (or an empty string) into a tuple of floats."""
    text = text.strip().strip("()[]")
    if not text:
        return ()
    return tuple(float(t) for t in text.replace(";", ",").split(",") if t.strip())


def coerce(cls: type, name: str, value: Any) -> Any:
    """Convert ``value`` (e.g. from JSON or a text box) to the declared type of field ``name``;
    :class:`ParamError` when it cannot be (a list for a number, ``"abc"`` for an int, …)."""
    f = next(f for f in fields(cls) if f.name == name)
    tp = field_type(cls, f)
    try:
        return _coerce(tp, value)
    except (TypeError, ValueError, OverflowError):
        label = f.metadata.get("label") or f.name
        raise ParamError(f"{label} = {str(value)[:80]!r} is not a valid {getattr(tp, '__name__', tp)}") from None


def _coerce(tp: Any, value: Any) -> Any:
    if isinstance(value, (dict, list)) and not _is_tuple_of_float(tp):
        raise TypeError("a container")
    if _is_tuple_of_float(tp):
        return parse_floats(value) if isinstance(value, str) else tuple(float(v) for v in value)
    if tp is bool:
        if isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return bool(value)
    if tp is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("not whole")
        return int(value)
    if tp is float:
        return float(value)
    if tp is str and not isinstance(value, str):
        raise TypeError("not text")
    return value


class ParamError(InvguiError):
    """Parameters that cannot be used; the message names every bad field and why."""


def validate(p: Any) -> list[str]:
    """Human-readable problems with a parameter instance (empty when valid).

    Besides the declared ``min``/``max``/``choices``, every value must have its field's type
    (a bool is no int), and NaN or ±inf is refused for every float: no parameter here means
    anything at infinity, and a NaN would silently poison a whole run.
    """
    import math

    problems = []
    hints = _type_hints(type(p))  # type: ignore[arg-type]  # a class is hashable; typeshed's lru_cache says Hashable
    for f in fields(p):
        v = getattr(p, f.name)
        label = f.metadata.get("label") or f.name
        tp = hints.get(f.name)
        lo, hi, choices = f.metadata.get("min"), f.metadata.get("max"), f.metadata.get("choices")
        vals = v if isinstance(v, tuple) else (v,)
        if _is_tuple_of_float(tp) and not isinstance(v, tuple):
            problems.append(f"{label} = {v!r} is not a list of numbers")
            continue
        want = float if _is_tuple_of_float(tp) else tp
        for x in vals:
            if want is float and not (isinstance(x, (int, float)) and not isinstance(x, bool)):
                problems.append(f"{label} = {x!r} is not a number")
                continue
            if want is int and not (isinstance(x, int) and not isinstance(x, bool)):
                problems.append(f"{label} = {x!r} is not a whole number")
                continue
            if want is bool and not isinstance(x, bool):
                problems.append(f"{label} = {x!r} is not true or false")
                continue
            if want is str and not isinstance(x, str):
                problems.append(f"{label} = {x!r} is not text")
                continue
            if isinstance(x, float) and not math.isfinite(x):
                problems.append(f"{label} = {x} is not a finite number")
                continue
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                if lo is not None and x < lo:
                    problems.append(f"{label} = {x} is below its minimum {lo}")
                if hi is not None and x > hi:
                    problems.append(f"{label} = {x} is above its maximum {hi}")
        if choices and v not in choices:
            problems.append(f"{label} = {v!r} is not one of {', '.join(map(str, choices))}")
    return problems


def check(p: T, what: str = "") -> T:
    """``p`` itself when valid; else :class:`ParamError` listing every problem."""
    problems = validate(p)
    if problems:
        raise ParamError(f"invalid {what or type(p).__name__}: " + "; ".join(problems))
    return p


def to_dict(p: Any) -> dict[str, Any]:
    """JSON-ready dict of a parameter instance (tuples become lists)."""
    out = {}
    for f in fields(p):
        v = getattr(p, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def from_dict(cls: type[T], data: dict[str, Any], base: T | None = None) -> T:
    """Build ``cls`` from ``data`` on top of ``base`` (or the defaults), validated; unknown keys,
    values of the wrong type and values out of range are a :class:`ParamError`."""
    if not isinstance(data, dict):
        raise ParamError(f"{cls.__name__}: expected a mapping of parameter names to values, got "
                         f"{type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ParamError(f"unknown parameter(s) for {cls.__name__}: {', '.join(sorted(map(str, unknown)))}")
    base = base if base is not None else cls()
    return check(dataclasses.replace(base, **{k: coerce(cls, k, v) for k, v in data.items()}))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one optional flag per field of ``cls``; unset flags stay ``None`` (= preset value)."""
    group = parser.add_argument_group(f"{cls.__name__} (override the preset one by one)")
    for f in fields(cls):
        if f.name in skip or not f.metadata.get("cli", True):
            continue
        tp = field_type(cls, f)
        help_ = (f.metadata.get("tooltip") or "") + f" [default {f.default!r}]"
        kw: dict[str, Any] = {"dest": f"param_{f.name}", "default": None, "help": help_.replace("%", "%%")}
        if tp is bool:
            group.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, **kw)
            continue
        if f.metadata.get("choices"):
            kw["choices"] = f.metadata["choices"]
        if _is_tuple_of_float(tp):
            kw["type"] = parse_floats
            kw["metavar"] = "LIST"                 # comma-separated numbers, as the help says
        elif tp in (int, float):
            kw["type"] = tp
            kw["metavar"] = "N" if tp is int else "X"
        elif not kw.get("choices"):
            kw["metavar"] = "TEXT"                 # argparse would show the dest, PARAM_NAME
        group.add_argument(_flag(f.name), **kw)


def from_arguments(cls: type[T], args: argparse.Namespace, base: T) -> T:
    """Apply the flags added by :func:`add_arguments` on top of ``base``."""
    changes = {f.name: getattr(args, f"param_{f.name}") for f in fields(cls)
               if getattr(args, f"param_{f.name}", None) is not None}
    return check(dataclasses.replace(base, **changes))


@dataclass
class Presets(Generic[T]):
    """Named instances of a parameter dataclass; the first one is the default."""

    cls: type[T]
    items: dict[str, T] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)       # a line per preset: what it is for

    def add(self, name: str, value: T, note: str = "") -> T:
        self.items[name] = value
        if note:
            self.notes[name] = note
        return value

    def note(self, name: str) -> str:
        """What preset ``name`` is, in one line ("" when it has no note)."""
        return self.notes.get(name, "")

    def get(self, name: str) -> T:
        try:
            return self.items[name]
        except KeyError:
            raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(self.items)}") from None

    def names(self) -> list[str]:
        return list(self.items)
