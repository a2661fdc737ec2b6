"""Comparing runs: arranging them in a grid, sweeps, a contact sheet (Qt-free).

A grid has one row per value of ``rows_by`` and one column per value of ``cols_by``; an axis is
``method``, ``layer``, ``model``, ``image``, ``run`` (one column per run) or ``param:NAME`` (a
method parameter, e.g. ``param:tv_weight``).  ``sweep`` builds the runs of a sweep from a template
run: methods × layers, or one parameter over a list of values.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InvguiError
from .events import Result
from .images import to_uint8
from .methods.registry import METHODS, OPTIMIZE, method
from .results import Metrics, summary
from .session import Run

AXES = ("method", "layer", "model", "image", "run")
def method_word(name: str) -> str:
    """A method's word in captions and legends ("optimisation"); an unknown name as it is."""
    spec = METHODS.get(name)
    return spec.word if spec is not None else name


def axis_value(run: Run, axis: str) -> str:
    if axis == "method":
        return method_word(run.method)
    if axis == "layer":                   # a fit run (the whole image, padded) is another input
        return run.layer + (" (fit)" if run.framing == "fit" else "")
    if axis == "model":
        return run.model
    if axis == "image":
        return _image_name(run.image)
    if axis == "run":
        return run.label()
    if axis.startswith("param:"):
        return str(run.param_values().get(axis[6:], "—"))
    raise InvguiError(f"unknown axis {axis!r}: one of {', '.join(AXES)} or param:NAME")


def _image_name(source: str) -> str:
    return Path(source.replace("sample:", "")).stem if "/" in source else source.replace("sample:", "")


@dataclass
class Grid:
    rows_by: str
    cols_by: str
    rows: list[str] = field(default_factory=list)
    cols: list[str] = field(default_factory=list)
    cells: dict[tuple[int, int], Run] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)     # e.g. runs that shared a cell and got their own column


def grid(runs: list[Run], rows_by: str | None = None, cols_by: str | None = None) -> Grid:
    """Arrange ``runs`` (in their order); by default rows = method and columns = layer, or one column
    per run when every run has the same layer.  Runs are never merged: a run whose row and column
    are already taken gets a column of its own (``"blocks.3 (2)"``), and ``notes`` says so."""
    runs = [r for r in runs if r.result is not None]
    if rows_by is None:
        rows_by = "method"
    if cols_by is None:
        if len({r.layer for r in runs}) > 1:
            cols_by = "layer"
        elif len({r.image for r in runs}) > 1:
            cols_by = "image"
        elif len({axis_value(r, rows_by) for r in runs}) == len(runs):
            cols_by = "layer"                 # the rows already tell the runs apart: one column
        else:
            cols_by = "run"
    g = Grid(rows_by, cols_by)
    shared: dict[tuple[str, str], int] = {}
    row_of: dict[str, int] = {}
    col_of: dict[str, int] = {}
    next_k: dict[tuple[str, str], int] = {}      # the next own-column number to try (linear, not quadratic)
    for r in runs:
        rv, base = axis_value(r, rows_by), axis_value(r, cols_by)
        ri = row_of.setdefault(rv, len(g.rows))
        if ri == len(g.rows):
            g.rows.append(rv)
        k = next_k.get((rv, base), 1)
        cv = base if k == 1 else f"{base} ({k})"
        while cv in col_of and (ri, col_of[cv]) in g.cells:
            k += 1
            cv = f"{base} ({k})"
        next_k[(rv, base)] = k + 1
        if k > 1:
            shared[(rv, base)] = k
        ci = col_of.setdefault(cv, len(g.cols))
        if ci == len(g.cols):
            g.cols.append(cv)
        g.cells[(ri, ci)] = r
    g.notes = [f"{k} runs share {rv} / {cv}: each has its own column (choose other axes to tell them apart)"
               for (rv, cv), k in shared.items()]
    if cols_by == "layer":                # layers in network order where the runs tell it
        depth = {axis_value(run, "layer"): layer_depth(run) for run in g.cells.values()}
        depth.update({c: depth.get(c.rsplit(" (", 1)[0]) for c in g.cols if c not in depth})
        order = sorted(range(len(g.cols)), key=lambda i: (depth.get(g.cols[i]) is None, depth.get(g.cols[i]) or 0))
        place = {old: new for new, old in enumerate(order)}
        g.cells = {(ri, place[ci]): run for (ri, ci), run in g.cells.items()}
        g.cols = [g.cols[i] for i in order]
    return g


_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
_NOT_STAGES = re.compile(r"Norm|ReLU|GELU|SiLU|Sigmoid|Tanh|Act|Dropout|Pool|Flatten|Identity|Softmax")


def default_sweep_layers(rep, size: int, n: int = 4) -> list[str]:
    """``n`` layers spread from shallow to deep for a methods × layers sweep: containers are
    opened (a Sequential's stages, not the Sequential), and only layers with a spatial map that fit
    ``size`` count — no classifier, pooling, normalisation or activation."""
    def candidates(nodes):
        return [i for i in nodes if i.fits and i.shape is not None and len(i.shape) == 3
                and not _NOT_STAGES.search(i.kind)]

    # The network's own stages: open containers one level at a time until there are enough
    # (EfficientNet's blocks.0…6, AlexNet's features.N, ResNet's layer1…4 as they are).
    nodes = rep.layer_tree(size)
    while len(candidates(nodes)) < n and any(i.kind in _CONTAINERS and i.children for i in nodes):
        nodes = [c for i in nodes for c in (i.children if i.kind in _CONTAINERS and i.children else [i])]
    picks = candidates(nodes)
    if not picks:                                     # e.g. a single-output TorchScript model
        picks = [i for i in rep.layers(size) if i.fits and i.shape is not None and len(i.shape) == 3][-1:]
    if len(picks) <= n:
        return [i.name for i in picks]
    idx = np.linspace(0, len(picks) - 1, n).round().astype(int)
    return [picks[i].name for i in dict.fromkeys(idx.tolist())]


def layer_depth(run: Run) -> float | None:
    """The relative depth (0…1) of a run's layer, as its record gives it."""
    if run.result is None:
        return None
    return run.result.record.get("resolved", {}).get("relative_depth", run.result.record.get("relative_depth"))


# What must be equal for two runs to lie on one curve of error against depth: everything a run
# asks for except its layer (and, for decoders, which file — one decoder per layer).
_SERIES_FIELDS = ("method", "model", "image", "rep_params", "weights", "random_weights", "framing", "params")


def depth_series(runs: list[Run], value, kinds: dict[str, str] | None = None
                 ) -> dict[str, list[tuple[float, float, float, float]]]:
    """Curves of ``value(run)`` against layer depth (paper 001, Fig. 7), joining only runs that
    differ in nothing but the layer — and the seed: runs of several random starts are replicates of
    one setting, so a curve's point at a depth is their mean, with their lowest and highest value
    (one curve per seed would give a session of many restarts hundreds of unreadable curves).
    Points are ``(depth, mean, low, high)``; a curve's name says what tells it from the others.
    ``kinds`` (when given) gets each curve's kind — its method, and an optimisation's image prior
    ("optimize/fourier") — for a plot to draw every kind in its own colour and marker."""
    groups: dict[str, dict[float, list[float]]] = {}
    fields: dict[str, dict] = {}
    for r in runs:
        depth = layer_depth(r)
        val = value(r) if depth is not None else None
        if depth is None or val is None:
            continue
        f = {k: getattr(r, k) for k in _SERIES_FIELDS}
        f["params"] = {k: v for k, v in r.param_values().items() if k != "seed"}
        key = _json(f)
        fields[key] = f
        groups.setdefault(key, {}).setdefault(depth, []).append(float(val))
    varying = [k for k in _SERIES_FIELDS[2:-1] if len({_json(f[k]) for f in fields.values()}) > 1]
    params = [f["params"] for f in fields.values() if _has_params(f["method"])]
    differing = sorted(n for n in {n for p in params for n in p} if len({_json(p.get(n)) for p in params}) > 1)
    if "parameterisation" in differing:
        # Priors compared each at its own schedule (a parameterisation sweep): the curve is named by
        # its prior, not by the optimiser settings that come with it.
        from .methods.optimize_params import SCHEDULE

        schedules: dict[str, set[str]] = {}
        for p in params:
            schedules.setdefault(str(p.get("parameterisation")), set()).add(_json({k: p.get(k) for k in SCHEDULE}))
        if all(len(v) == 1 for v in schedules.values()):
            differing = ["parameterisation"] + [n for n in differing if n not in SCHEDULE and n != "parameterisation"]
    out: dict[str, list[tuple[float, float, float, float]]] = {}
    for key, pts in groups.items():
        f = fields[key]
        name = f"{method_word(f['method'])} · {f['model']}"
        if "rep_params" in varying and f["rep_params"]:
            name += f" ({_words(f['rep_params'])})"          # the representation's own, beside its name
        name += "".join(f" · {n} {f['params'][n]}" for n in differing if n in f["params"])
        for k in varying:
            if k == "image":
                name += f" · {_image_name(f['image'])}"
            elif k == "rep_params":
                pass                                            # said beside the model above
            elif k == "weights":
                name += f" · weights {Path(str(f[k])).name}" if f[k] else " · default weights"
            elif k == "random_weights":
                name += " · random weights" if f[k] else ""
            elif k == "framing":
                name += " · whole image, padded" if f[k] == "fit" else " · centre square"
        while name in out:
            name += " ′"
        out[name] = [(d, float(np.mean(v)), min(v), max(v)) for d, v in sorted(pts.items())]
        if kinds is not None:
            prior = f["params"].get("parameterisation") if f["method"] == OPTIMIZE.name else None
            kinds[name] = f"{f['method']}/{prior}" if prior else f["method"]
    return out


def _has_params(name: str) -> bool:
    spec = METHODS.get(name)
    return spec is not None and spec.params_cls is not None


# What makes two runs the same computation (their name, id, state and result aside).
_REQUEST_FIELDS = ("method", "model", "layer", "image", "params", "rep_params", "weights", "random_weights",
                   "decoder", "size", "eval_size", "framing")


def new_runs(runs: list[Run], session_runs: list[Run]) -> tuple[list[Run], int]:
    """``runs`` less those the session has already (queued, running or finished: not failed or
    stopped ones, which are worth running again), and how many were left out."""
    have = {_json({k: getattr(r, k) for k in _REQUEST_FIELDS}) for r in session_runs
            if r.state in ("queued", "running", "done")}
    fresh = [r for r in runs if _json({k: getattr(r, k) for k in _REQUEST_FIELDS}) not in have]
    return fresh, len(runs) - len(fresh)


def _words(params: dict) -> str:
    """A representation's own parameters in words: "cell 8, orientations 9" (not a dict)."""
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in params.items())


def _json(v) -> str:
    import json

    return json.dumps(v, sort_keys=True, default=str)


CAPTION_KEY = ("Under each cell: rep = representation error ‖Φ(y) − Φ0‖/‖Φ0‖ of the reconstruction y; "
               "nre = normalised reconstruction error ‖x − y‖/N against the photo x (paper 001); dB / SSIM = "
               "PSNR and SSIM against the photo (lower errors, higher dB and SSIM are better); ★ = the closest "
               "to the photo of its column (lowest nre, else lowest rep); ⚠ = the run failed quietly (its line "
               "in the run list says why).")


def best_per_column(g: Grid, nre: dict[str, float]) -> set[str]:
    """The ids of the run closest to its photo in each column of ``g``: the lowest normalised
    reconstruction error where every finished run of the column has one, else the lowest
    representation error (a column of one finished run marks none: there is nothing to beat)."""
    cols: dict[int, list[tuple[Run, Result]]] = {}
    for (_, ci), run in g.cells.items():
        if run.result is not None:
            cols.setdefault(ci, []).append((run, run.result))
    best = set()
    for pairs in cols.values():
        if len(pairs) < 2:
            continue
        runs = [r for r, _ in pairs]
        if all(r.id in nre for r in runs):
            best.add(min(runs, key=lambda r: nre[r.id]).id)
            continue
        errors = [(Metrics.of(res).representation_error, r) for r, res in pairs]
        known = [(e, r) for e, r in errors if e is not None]
        if known:
            best.add(min(known, key=lambda t: t[0])[1].id)
    return best


def caption(run: Run, nre: float | None = None) -> str:
    """The metrics under a grid cell (core.results, caption style)."""
    return run.state if run.result is None else summary(run.result, "caption", nre)


def normalised_error(run: Run, distance: float) -> float | None:
    """‖x − x0‖/N of a run's first reconstruction against its preprocessed original."""
    res = run.result
    if res is None or res.target is None or not distance:
        return None
    img = res.images[0]
    if img.shape != res.target.shape:
        return None
    return float(np.sqrt(((img - res.target) ** 2).sum()) / distance)


# OpenCV's Hershey fonts draw ASCII only (a "→" became "?": "128?224 px" on an exported sheet): what
# invgui's captions use beyond it, spelled in ASCII.  Plain text, not a font file: the sheet looks the
# same on every machine, whatever fonts it has.
_ASCII = {"→": "->", "±": "+/-", "×": "x", "·": "|", "‖": "||", "⚠": "!", "—": "-", "–": "-", "…": "...",
          "²": "^2", "λ": "lambda", "α": "alpha", "β": "beta", "Φ": "Phi", "µ": "u"}


def ascii_text(text: str) -> str:
    """``text`` as the Hershey fonts can draw it: invgui's symbols spelled out, anything else non-ASCII '?'."""
    out = "".join(_ASCII.get(ch, ch) for ch in text)
    return out.encode("ascii", "replace").decode("ascii")


def fitted_text(text: str, width: int, scale: float, thickness: int, smallest: float = 0.3) -> tuple[str, float]:
    """(text, font scale) that fit ``width`` px in OpenCV's Hershey simplex font: the scale lowered
    down to ``smallest`` of it, then the text cut with '...' — a caption never runs into the next cell."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    text = ascii_text(text)
    w = cv2.getTextSize(text, font, scale, thickness)[0][0]
    if w > width:
        scale = max(scale * smallest, scale * width / w)
    while len(text) > 3 and cv2.getTextSize(text, font, scale, thickness)[0][0] > width:
        text = text[:-4] + "..."
    return text, scale


def contact_sheet(g: Grid, tile: int = 512, nre: dict[str, float] | None = None) -> np.ndarray:
    """The grid as one labelled image (uint8): tiles ``tile`` px wide (print resolution at 300 dpi:
    512 px ≈ 4.3 cm), column labels on top, row labels on the left, metrics under each tile."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    fs = tile / 512 * 0.9
    th = max(1, round(tile / 256))
    line = int(30 * fs) + 10
    left = max(120, max((cv2.getTextSize(ascii_text(r[:24]), font, fs, th)[0][0] for r in g.rows), default=0) + 24)
    top = line + 8
    cap = line + 6
    gap = max(4, tile // 64)
    h = top + len(g.rows) * (tile + cap + gap)
    w = left + len(g.cols) * (tile + gap)
    sheet = np.full((h, w, 3), 255, np.uint8)
    for ci, c in enumerate(g.cols):
        x = left + ci * (tile + gap)
        text, scale = fitted_text(c, tile - 8, fs, th)
        cv2.putText(sheet, text, (x + 4, top - 12), font, scale, (0, 0, 0), th, cv2.LINE_AA)
    for ri, r in enumerate(g.rows):
        y = top + ri * (tile + cap + gap)
        text, scale = fitted_text(r, left - 12, fs, th)
        cv2.putText(sheet, text, (8, y + tile // 2), font, scale, (0, 0, 0), th, cv2.LINE_AA)
        for ci in range(len(g.cols)):
            run = g.cells.get((ri, ci))
            if run is None or run.result is None:
                continue
            x = left + ci * (tile + gap)
            img = to_uint8(run.result.images[0])
            sheet[y:y + tile, x:x + tile] = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_CUBIC
                                                       if img.shape[0] < tile else cv2.INTER_AREA)
            text, scale = fitted_text(caption(run, (nre or {}).get(run.id)), tile - 4, fs * 0.75, max(1, th - 1))
            cv2.putText(sheet, text, (x + 2, y + tile + line - 8), font, scale, (60, 60, 60), max(1, th - 1),
                        cv2.LINE_AA)
    return sheet


def labelled_grid(cells: list[list[np.ndarray | None]], rows: list[str], cols: list[str], tile: int = 128
                  ) -> np.ndarray:
    """Images ([0, 1] float or uint8) in a grid with row labels on the left and column labels on
    top, each resized to ``tile`` px (an empty cell stays white): uint8."""
    import cv2

    font, fs = cv2.FONT_HERSHEY_SIMPLEX, max(0.35, tile / 256)
    gap, top = 4, int(24 * fs) + 8
    left = max((cv2.getTextSize(ascii_text(r), font, fs, 1)[0][0] for r in rows), default=0) + 12
    sheet = np.full((top + len(rows) * (tile + gap), left + len(cols) * (tile + gap), 3), 255, np.uint8)
    for ci, c in enumerate(cols):
        text, scale = fitted_text(c, tile - 4, fs * 0.8, 1)
        cv2.putText(sheet, text, (left + ci * (tile + gap) + 2, top - 8), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    for ri, (label, row) in enumerate(zip(rows, cells, strict=True)):
        y = top + ri * (tile + gap)
        cv2.putText(sheet, ascii_text(label), (4, y + tile // 2), font, fs, (0, 0, 0), 1, cv2.LINE_AA)
        for ci, img in enumerate(row):
            if img is None:
                continue
            im = img if img.dtype == np.uint8 else to_uint8(img)
            x = left + ci * (tile + gap)
            sheet[y:y + tile, x:x + tile] = cv2.resize(im, (tile, tile), interpolation=cv2.INTER_AREA
                                                       if im.shape[0] > tile else cv2.INTER_CUBIC)
    return sheet


def sweep_layers(template: Run, methods: list[str], layers: list[str], decoders: dict[str, str] | None = None,
                 size: int = 0, skipped: list[str] | None = None) -> list[Run]:
    """methods × layers; a decoder or hybrid run needs ``decoders[layer]`` (layers without one are
    skipped, and said in ``skipped``).  ``size``: the side the decoder methods run at (the window's,
    so the sweep compares like for like, or the decoder page's; 0: each decoder its own)."""
    runs = []
    for name in methods:
        spec = method(name)
        for layer in layers:
            path = (decoders or {}).get(layer)
            if spec.uses_decoder and path is None:
                if skipped is not None:
                    skipped.append(f"{spec.word} at {layer}")
                continue
            runs.append(Run(request=spec.request(template.request, layer=layer, decoder=path, size=size)))
    return runs


def sweep_images(template: Run, methods: list[str], images: list[str], decoder: str | None = None,
                 size: int = 0) -> list[Run]:
    """methods × images at the template's layer (the decoder and hybrid rows need ``decoder``), the
    decoder methods at input side ``size`` (0: each its own).  The optimisation runs differ only
    in their image, so the window computes them as one batch."""
    runs = []
    for name in methods:
        spec = method(name)
        if spec.uses_decoder and decoder is None:
            continue
        runs += [Run(request=spec.request(template.request, images=(image,), decoder=decoder, size=size))
                 for image in images]
    return runs


def sweep_default_layers(rep, size: int, shipped: list[str], n: int = 4) -> list[str]:
    """The layers of a default methods × layers sweep: when a decoder method is in it, the layers that
    have a decoder first (up to ``n``, shallow to deep), the spread of :func:`default_sweep_layers`
    filling the rest; else that spread alone."""
    spread = default_sweep_layers(rep, size, n)
    if not shipped:
        return spread
    order = {name: i for i, name in enumerate(i.name for i in rep.layers(size))}
    picked = sorted(dict.fromkeys(shipped), key=lambda name: order.get(name, len(order)))[:n]
    picked += [name for name in spread if name not in picked][:n - len(picked)]
    return sorted(picked, key=lambda name: order.get(name, len(order)))


def sweep_param(template: Run, name: str, values: list) -> list[Run]:
    """One optimisation run per value of parameter ``name``.  A sweep over the image
    parameterisation gives each prior its own optimiser and schedule (``optimize_params.changed``):
    compared at one learning rate, all but one of them would fail."""
    base = template.request.optimize_params()
    return [Run(request=OPTIMIZE.request(template.request, params=base.changed(**{name: v}))) for v in values]


def save_sheet(path: str | os.PathLike, sheet: np.ndarray, dpi: int = 300) -> Path:
    from .files import save_png_dpi

    return save_png_dpi(path, sheet, dpi)
