"""Typed metrics of a result, and how a result is told in words — one place for the command
line, the run list, the comparison view's captions and the window's result panel, so the same
run never reads differently in two of them.

``Metrics.of(result)`` is the typed view of ``Result.metrics`` (which stays a plain dict: it is
what the JSON records and sessions store).  Every reader goes through it instead of indexing the
dict by string key; an absent measure is ``None``.

``summary(result, style)``: ``"line"`` is the command line's full sentence (mean ± std over
restarts), ``"short"`` the run list's second line, ``"caption"`` the text under a comparison cell
(with the normalised reconstruction error ``nre`` when known), ``"html"`` the window's result panel.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np

from .errors import InvguiError
from .events import PER_IMAGE, Result, per_image_metrics  # noqa: F401  (they live below the methods)
from .methods.captions import batch_note
from .methods.registry import METHODS, OPTIMIZE, Method

STYLES = ("line", "short", "caption", "html")


@dataclass(frozen=True)
class Metrics:
    """What a run measured.  Optimisation fills the iteration fields, decoders ``seconds`` (one
    forward pass), training the ``training_*`` / ``held_out_*`` ones; PSNR/SSIM and the normalised
    reconstruction error exist when the target was an image (not a feature file)."""

    representation_error: float | None = None
    representation_error_std: float | None = None
    start_representation_error: float | None = None
    activation: float | None = None
    start_activation: float | None = None
    psnr: float | None = None
    psnr_std: float | None = None
    ssim: float | None = None
    ssim_std: float | None = None
    normalised_reconstruction_error: float | None = None
    normalised_reconstruction_error_std: float | None = None
    eval_distance: float | None = None
    final_loss: float | None = None
    iterations: int | None = None
    seconds: float | None = None
    iterations_per_second: float | None = None
    # decoder training
    training_images: int | None = None
    skipped: int | None = None
    images_per_second: float | None = None
    held_out_mse: float | None = None
    held_out_normalised_error: float | None = None

    @classmethod
    def of(cls, source: Result | Mapping[str, Any]) -> Metrics:
        """The typed view of a result's metrics dict (keys it does not know are ignored)."""
        m = source.metrics if isinstance(source, Result) else source
        return cls(**{name: m[name] for name in metric_names(cls) if m.get(name) is not None})  # type: ignore[arg-type]

    def pm(self, name: str, fmt: str, spread: bool = True) -> str:
        """``value ± std`` (the std only when ``spread`` and it was measured)."""
        value, std = getattr(self, name), getattr(self, f"{name}_std", None)
        if value is None:                       # a session file may hold PSNR without SSIM, …
            return "n/a"
        return format(value, fmt) + (f" ± {format(std, fmt)}" if spread and std is not None else "")


@functools.cache
def metric_names(cls: type) -> tuple[str, ...]:
    # dataclasses.fields() per call was most of Metrics.of's cost (the run list and Compare call it
    # for every run on every refresh: ~38,000 calls in a 200-run session).
    return tuple(f.name for f in dataclasses.fields(cls))


# -- a run that fails quietly says so --------------------------------------------------------------

# An image is flat when no colour channel varies over it by more than two grey levels of an 8-bit
# PNG (std ≤ 2/255): what a collapsed run returns (a solid square), and what no photo looks like.
FLAT_STD = 2.0 / 255.0
# The loss "rose over its last stretch" when the mean total loss of the last tenth of the run (at
# least LAST_MIN iterations) is above the tenth before it by more than ROSE of its size: Adam's step
# noise moves a stretch's mean by far less once a run has settled (and a run still falling is lower).
ROSE = 0.05
LAST_MIN = 5


def assess(result: Result) -> list[str]:
    """Why a finished run should not be taken as a result, one short reason each ([] for a run that
    ended well): its representation error ended above where it started (feature inversion), its
    image is flat (a restart's, for several), or its total loss rose over its last stretch."""
    out = []
    m = result.metrics
    params = result.record.get("params")
    objective = params.get("objective", "invert") if isinstance(params, dict) else "invert"
    start, end = m.get("start_representation_error"), m.get("representation_error")
    if objective == "invert" and isinstance(start, (int, float)) and isinstance(end, (int, float)) and end > start:
        out.append(f"representation error rose ({start:.3f} → {end:.3f})")
    images = np.asarray(result.images)
    if images.ndim == 4 and images.size:
        spread = images.reshape(len(images), -1, images.shape[-1]).std(axis=1).max(axis=1)     # per restart
        flat = [i for i, s in enumerate(spread) if not s > FLAT_STD]                           # NaN is flat too
        if flat:
            unit = "image" if "representation_error_per_image" in m else "restart"    # a decoder's batch
            which = "" if len(images) == 1 else f" ({unit}{'s' if len(flat) > 1 else ''} " \
                f"{', '.join(str(i + 1) for i in flat)} of {len(images)})"
            out.append(f"image is flat{which}: one colour, nothing of the photo")
    total = [float(v) for v in (result.history.get("total") or [])]
    k = max(LAST_MIN, len(total) // 10)
    if len(total) >= 2 * k:
        before, last = float(np.mean(total[-2 * k:-k])), float(np.mean(total[-k:]))
        if np.isfinite(before) and np.isfinite(last) and last - before > ROSE * max(abs(before), 1e-12):
            out.append(f"loss rose over the last {k} iterations ({before:.3g} → {last:.3g})")
    return out


def per_image_results(results: list[Result], n: int) -> list[Result]:
    """One Result per image of a batch: optimisation gives one each already; a decoder's one
    forward pass is split (its per-image metrics, the record saying which item of how many), and
    each piece assessed on its own."""
    if len(results) == n:
        return results
    (res,) = results
    out = []
    for i, per in enumerate(per_image_metrics(res.metrics, n)):
        piece = dataclasses.replace(res, images=res.images[i:i + 1], metrics=per,
                                    record={**res.record, "batch": n, "batch_index": i})
        piece.record["warnings"] = assess(piece)
        out.append(piece)
    return out


def warnings(result: Result) -> list[str]:
    """The warnings a run's record holds (``assess`` when it ran; [] in a record from before)."""
    said = result.record.get("warnings")
    return [str(w) for w in said] if isinstance(said, list) else []


def where(representation: object, layer: object) -> str:
    """"efficientnet_lite0 blocks.3", or "hog" for a representation whose one layer bears its
    name (titles read "hog hog")."""
    rep, lay = str(representation), str(layer)
    return rep if lay == rep else f"{rep} {lay}"


def format_seconds(sec: float) -> str:
    return f"{sec * 1000:.0f} ms" if sec < 1 else f"{sec:.1f} s"


def _work_eval(result: Result) -> tuple[int | None, int | None]:
    """(the side a run worked at, the side its image metrics were computed at), None where unsaid."""
    work, ev = result.record.get("input_size"), result.record.get("eval_size")
    work = work if isinstance(work, int) else None
    return work, ev if isinstance(ev, int) else work


def sizes(result: Result) -> str:
    """The side a run worked at, and the one its image metrics were computed at where it differs:
    "224 px", "128 px (metrics at 224 px)"; "" when the record does not say."""
    work, ev = _work_eval(result)
    if work is None:
        return ""
    return f"{work} px" + (f" (metrics at {ev} px)" if ev != work else "")


def summary(result: Result, style: str = "line", nre: float | None = None) -> str:
    if style not in STYLES:
        raise InvguiError(f"summary style {style!r}: one of {', '.join(STYLES)}")
    m = Metrics.of(result)
    said = warnings(result)
    if style == "short":
        # the warning first: the run list's second line leads with it
        bits = [f"⚠ {said[0]}" + (f" (+{len(said) - 1} more)" if len(said) > 1 else "")] if said else []
        bits += [f"rep. error {m.representation_error:.3f}"] if m.representation_error is not None else []
        if m.psnr is not None:
            bits.append(f"PSNR {m.psnr:.1f}")
        if m.seconds is not None:
            device = result.record.get("device")
            bits.append(format_seconds(m.seconds) + batch_note(result) + (f" on {device}" if device else ""))
        if (size_said := sizes(result)):
            bits.append(size_said)
        return ", ".join(bits)
    if style == "caption":
        work, ev = _work_eval(result)
        parts = ["⚠"] if said else []
        parts += [f"{work}→{ev} px"] if work is not None and ev != work else []
        parts += [f"rep {m.representation_error:.3f}"] if m.representation_error is not None else []
        if nre is not None:
            parts.append(f"nre {nre:.3f}")
        if m.psnr is not None:
            parts.append(f"{m.psnr:.1f} dB / {m.ssim if m.ssim is not None else float('nan'):.2f}")
        if m.seconds is not None:
            parts.append(format_seconds(m.seconds) + batch_note(result))
        return " · ".join(parts)
    if style == "html":
        text = _html(result, m)
        return text + "".join(f"<br><b style='color:#b00'>⚠ {escape(w)}</b>" for w in said)
    return _line(result, m) + "".join(f"; WARNING: {w}" for w in said)


def _image_parts(m: Metrics, spread: bool, sep: str) -> list[str]:
    """PSNR/SSIM and the normalised reconstruction error, where the target was an image."""
    parts = []
    if m.psnr is not None:
        parts.append(f"PSNR {m.pm('psnr', '.2f', spread)} dB{sep} SSIM {m.pm('ssim', '.3f', spread)}")
    if m.normalised_reconstruction_error is not None:
        parts.append(f"normalised reconstruction error {m.pm('normalised_reconstruction_error', '.4f', spread)}")
    return parts


def _line(result: Result, m: Metrics) -> str:
    """One line of the metrics that matter, mean ± std over restarts where there are several: the
    method says its own part (:mod:`invgui.core.methods.captions`)."""
    spread = len(result.images) > 1
    spec = _method(result)
    parts = spec.caption.head(result, m, spec.word, spread)
    parts += _image_parts(m, spread, ";")
    work, ev = _work_eval(result)
    if work is not None and ev != work:
        parts.append(f"at {sizes(result)}")
    parts.append(spec.caption.cost(result, m))
    return "; ".join(parts)


def layout_text(rec: dict) -> str:
    """The layer's output as the layer tree says it (tokens, channels last), from a record."""
    from .layout import Layout

    try:
        return Layout.from_dict(rec["layer_layout"]).text()
    except (KeyError, ValueError, TypeError, AttributeError):      # a record from before layouts
        return "×".join(map(str, rec.get("layer_shape", [])))


def _html(result: Result, m: Metrics) -> str:
    """The window's result panel: where, the errors, the cost, and (optimisation) the settings."""
    rec = result.record
    shape = layout_text(rec)
    said = sizes(result)
    where_ = f"<b>{escape(where(rec.get('representation'), rec.get('layer')))}</b> ({shape}" + (
        f", at {said})" if said else ")")
    spread = len(result.images) > 1
    image = "".join(f"{p}<br>" for p in _image_parts(m, spread, " ·"))
    spec = _method(result)
    return spec.caption.html(result, m, spec.word, where_, image, spread)


def _method(result: Result) -> Method:
    """The method a result's record names (an old or foreign record without one: optimisation)."""
    return METHODS.get(str(result.record.get("method")), OPTIMIZE)


def progress(result: Result) -> str:
    """The status bar's words once a run has ended."""
    return _method(result).caption.progress(result, Metrics.of(result))


def ended(result: Result) -> str:
    """The reconstruction pane's word for how a run ended ("done", "stopped"; a decoder's name)."""
    spec = _method(result)
    return spec.caption.state(result, spec.word)
