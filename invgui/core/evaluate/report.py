"""What an evaluation reports: the summary (paper 001's normalised reconstruction error per
method and layer), the contact sheets, the results folder read back (:func:`open_results`), the
LaTeX table and the text table the command line prints."""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvguiError
from ..files import atomic_write, save_png
from ..images import load_image, path_problem, resize_center_crop
from ..params import to_dict
from .plan import EvaluateError, Plan, read_plan_file
from .rows import read_row_file, read_rows

SHEET_IMAGES = 8                   # the contact sheets show the first K images (their reconstructions kept)
SUMMARY_FIELDS = ("method", "layer", "depth", "n", "nre_mean", "nre_std", "representation_error_mean",
                  "representation_error_std", "psnr_mean", "psnr_std", "ssim_mean", "ssim_std", "perceptual_mean",
                  "perceptual_std", "set_distance")
N_IMAGES = 2000                    # N (the set's mean pairwise distance) over at most this many images


def write_sheets(plan: Plan, out: Path, sources: list[str], k: int = SHEET_IMAGES) -> list[Path]:
    """sheet_LAYER.png per layer: the first ``k`` images (columns) over each method's
    reconstruction of them (rows), from the PNGs the runs kept."""
    from ..compare import labelled_grid, method_word

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
    from .. import representations as R

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
        params = to_dict(p.params) if p.template.params is not None else {}
        what = [f"{p.model}{' (random weights)' if p.random_weights else ''}", f"layers {', '.join(p.layers)}",
                f"methods {', '.join(p.methods)}", f"images {p.data}" + (f" (first {p.limit})" if p.limit else "")]
        if params and any(_method_uses_params(m) for m in p.methods):
            what.append(f"{params.get('iters')} iterations, {params.get('optimizer')} lr {params.get('lr')}")
        if p.judge:
            from ..judge import describe

            what.append(f"judge {describe(p.judge)}")
        state = (f"{len(self.rows)} runs, complete" if self.complete else
                 f"{len(self.rows)} runs so far; summary.csv is written when every run is done (rerun the same "
                 "`invgui evaluate` command to finish a stopped one)")
        if self.damaged:
            state += (f"; {len(self.damaged)} damaged row(s) or file(s) left out ({self.damaged[0]}) — rerunning the "
                      "command redoes them")
        return " · ".join(what) + " — " + state


def _method_uses_params(name: str) -> bool:
    from ..methods.registry import method

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
    from ..compare import method_word

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

    from ..metrics import mean_pairwise_distance_rows

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
