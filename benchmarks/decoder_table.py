"""The shipped decoders against optimisation and the hybrid on the held-out real photos, as tables.

    python benchmarks/decoder_table.py --photos DIR [--decoders hog,...] [--preset fast] [--iters N]
                                       [--limit N] [--limit-for MODEL=N] [--work DIR] [--write]

DIR is the project's photo folder (``python benchmarks/fetch_photos.py --out DIR`` rebuilds it);
the held-out photos are those ``train_default_decoders.py --photos DIR`` kept out of training (every
5th by name).  For each shipped decoder (resources/decoders) this runs ``invgui evaluate`` over
them — the decoder, the optimisation method and the hybrid at the decoder's input size, one
restart, with the perceptual distance in EfficientNet-Lite1 blocks.3 (a network none of them was
trained against or inverts) — into ``--work/NAME`` (resumable: a rerun computes only what is
missing; one optimisation row per representation, layer and size is shared by the decoders that
have it), then prints two Markdown tables: the decoders (what each learned from, how long, its
size) and the measures, mean ± std over the photos, the best of each representation's rows in
bold.  ``--write`` also puts them into README.md and docs/decoders.md between their
``<!-- decoder-table … -->`` markers.  Prints figures; never part of the test pass/fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from train_default_decoders import SHIPPED, write_photos  # noqa: E402

from invgui.core import evaluate as E  # noqa: E402
from invgui.core.judge import LITE1  # noqa: E402
from invgui.core.methods import decoder as D  # noqa: E402
from invgui.core.methods.optimize import PRESETS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHOD_WORDS = {"decoder": "decoder", "optimize": "optimisation", "hybrid": "hybrid"}


def evaluate(name: str, file: Path, held: Path, work: Path, args, done: dict) -> tuple[dict, dict[str, dict]]:
    """(the decoder's metadata, its summary rows: method → row), computing what ``work/name`` lacks."""
    meta = D.load_checkpoint(file).meta
    model, layer, size = meta["representation"], meta["layer"] or meta["representation"], int(meta["input_size"])
    key = (model, layer, size)
    methods = ("decoder", "hybrid") if key in done else ("decoder", "optimize", "hybrid")
    params = dataclasses.replace(PRESETS.get(args.preset), restarts=1, **({"iters": args.iters} if args.iters else {}))
    limit = int(dict(x.split("=") for x in args.limit_for).get(model, args.limit))
    plan = E.Plan.of(model, [layer], methods, str(spread(held, limit)), params=params,
                     decoders={layer: str(file)}, size=size, rep_params=meta.get("representation_params"),
                     judge=LITE1)
    out = work / name
    t0 = time.perf_counter()
    E.run(plan, out, device=args.device,
          tick=lambda p: print(f"\r   {name}: {p.done}/{p.total}", end="", flush=True))
    print(f"\r   {name}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = {r["method"]: r for r in E.read_summary(out / "summary.csv")}
    if "optimize" in rows:
        done[key] = rows["optimize"]
    else:
        rows["optimize"] = done[key]
    return meta, rows


def spread(held: Path, n: int) -> Path:
    """``held``, or a folder of n of its photos evenly spread over it (so over the categories: the
    names begin with theirs) when 0 < n < their number."""
    photos = sorted(held.iterdir())
    if not 0 < n < len(photos):
        return held
    folder = held.parent / f"held-{n}"
    folder.mkdir(exist_ok=True)
    for p in photos[::len(photos) // n][:n]:
        if not (folder / p.name).exists():
            (folder / p.name).symlink_to(p.resolve())
    return folder


def trained_on(meta: dict) -> str:
    tr = meta.get("training") or {}
    tp = tr.get("params") or {}
    minutes = float(meta.get("training_seconds") or 0) / 60
    loss = D.training_loss(meta)
    return (f"{tr.get('dataset', str(tr.get('images', '?')) + ' images')}; {tp.get('size')}-px crops, "
            f"{meta.get('epochs')} epochs, {minutes:.0f} min" + ("" if loss == "pixel" else f"; loss {loss}")
            + (f"; fine-tuned from `{Path(tr['init']).name}`" if tr.get("init") else ""))


def tables(results: dict[str, tuple[dict, dict[str, dict]]], args) -> tuple[str, str]:
    """(the README's short table, docs/decoders.md's full one), Markdown."""
    short = ["| decoder | representation, layer, size | learned from | held-out normalised error: decoder "
             "/ optimisation / hybrid |", "|---|---|---|---|"]
    full = ["| decoder | method | photos | normalised reconstruction error | representation error | PSNR (dB) | "
            "Lite1 blocks.3 distance | s / image |", "|---|---|---|---|---|---|---|---|"]
    for name, (meta, rows) in results.items():
        layer = meta["layer"] if meta["layer"] not in (None, meta["representation"]) else ""
        where = f"`{meta['representation']}` {layer}".rstrip() + f", {meta['input_size']} px"
        order = [m for m in ("decoder", "optimize", "hybrid") if m in rows]
        best = {k: min(order, key=lambda m: float(rows[m][f"{k}_mean"])) for k in ("nre", "representation_error",
                                                                                  "perceptual")}
        counts = {int(rows[m]["n"]) for m in order}
        fewer = f"({min(counts)} photos) " if min(counts) < 40 else ""
        nre = fewer + " / ".join(("**{}**" if best["nre"] == m else "{}").format(f"{float(rows[m]['nre_mean']):.3f}")
                                 for m in order)
        short.append(f"| `{name}` | {where} | {trained_on(meta)} | {nre} |")
        for m in order:
            r = rows[m]
            cells = [E.mean_pm_std(r, "nre", ".3f"), E.mean_pm_std(r, "representation_error", ".3f"),
                     f"{float(r['psnr_mean']):.1f}", E.mean_pm_std(r, "perceptual", ".3f")]
            cells = [f"**{c}**" if best.get(k) == m else c
                     for c, k in zip(cells, ("nre", "representation_error", "", "perceptual"), strict=True)]
            its = f", {args.iters} it" if args.iters else ""
            label = {"decoder": f"decoder ({D.training_loss(meta)} loss)",
                     "optimize": f"optimisation (`{args.preset}`{its})",
                     "hybrid": "hybrid (decoder, then the same optimisation)"}[m]
            full.append(f"| `{name}` ({where}) | {label} | {r['n']} | " + " | ".join(cells) + f" | {r['seconds']} |")
    return "\n".join(short), "\n".join(full)


def seconds_per_image(folder: Path) -> dict[str, str]:
    rows = E.open_results(folder).rows
    out = {}
    for m in {r["method"] for r in rows}:
        s = [float(r["seconds"]) for r in rows if r["method"] == m]
        out[m] = f"{sum(s) / len(s):.2f}"
    return out


def write_between(path: Path, marker: str, text: str) -> None:
    """Replace what lies between ``<!-- marker -->`` and ``<!-- /marker -->`` in ``path``."""
    body = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"(<!-- {re.escape(marker)} -->\n).*?(<!-- /{re.escape(marker)} -->)", re.S)
    if not pattern.search(body):
        raise SystemExit(f"{path}: no <!-- {marker} --> … <!-- /{marker} --> markers")
    path.write_text(pattern.sub(lambda m: m.group(1) + text + "\n" + m.group(2), body), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", required=True, help="the project's photo folder (benchmarks/fetch_photos.py)")
    ap.add_argument("--decoders", default="", help="comma-separated shipped decoders (default: all)")
    ap.add_argument("--preset", default="fast", help="the optimisation and hybrid's preset (default fast)")
    ap.add_argument("--iters", type=int, default=0, help="override the preset's iterations")
    ap.add_argument("--limit", type=int, default=0, help="N of the held-out photos, evenly spread (default all 40)")
    ap.add_argument("--limit-for", action="append", default=[], metavar="MODEL=N",
                    help="another --limit for one representation's decoders (repeatable): a slow one")
    ap.add_argument("--work", default="", help="results folders (default: temporary; reuse one to resume)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--write", action="store_true", help="write the tables into README.md and docs/decoders.md")
    args = ap.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="invgui-decoder-table-"))
    _, held = write_photos(work / "photos", Path(args.photos))
    shipped = D.shipped_decoders()
    names = [n for n in args.decoders.split(",") if n] or \
        [n for n in SHIPPED if n in shipped] + [n for n in shipped if n not in SHIPPED]
    print(f"# decoder_table: {len(list(held.iterdir()))} held-out photos; preset {args.preset}; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, device {args.device}",
          flush=True)
    done: dict = {}
    results = {}
    for name in names:
        meta, rows = evaluate(name, shipped[name], held, work, args, done)
        secs = seconds_per_image(work / name)
        for m, r in rows.items():
            r["seconds"] = secs.get(m, r.get("seconds", "—"))
        results[name] = (meta, rows)
    short, full = tables(results, args)
    print(short, full, sep="\n\n")
    if args.write:
        write_between(ROOT / "README.md", "decoder-table", short)
        write_between(ROOT / "docs" / "decoders.md", "decoder-table", full)
        write_between(ROOT / "docs" / "decoders.md", "decoder-cards", short)
    return 0


if __name__ == "__main__":
    sys.exit(main())
