"""A figure like paper 001's Figs. 12–13: the inversion methods side by side on held-out photos.

    python benchmarks/figure_methods.py --photos DIR [--model hog] [--layer hog] [--images N]
                                        [--out docs/images/figure_methods_hog.png]

Columns: held-out photos of the project's photo folder DIR (``fetch_photos.py`` rebuilds it; the
ones ``train_default_decoders.py --photos DIR`` kept out of training, none of the shipped decoders
saw them): the first of each category, up to ``--images`` (default 4).  Rows: the photo, then each
shipped decoder for that representation and layer — the feature+adversarial one first (paper 001,
appendix A), then the pixel-loss one — the optimisation method (Mahendran & Vedaldi; the preset
decoder_table.py uses, ``fast``, one restart) and the hybrid (the pixel decoder's output, then the same
optimisation).  Every image is at the decoder's size.  The figure is made by this script only;
docs/decoders.md shows it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from train_default_decoders import photo_split  # noqa: E402

from invgui.core import representations as R  # noqa: E402
from invgui.core.events import Result  # noqa: E402
from invgui.core.images import load_image, resize_center_crop, to_uint8  # noqa: E402
from invgui.core.methods import decoder as D  # noqa: E402
from invgui.core.methods import optimize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def final(gen) -> Result:
    return next(ev for ev in gen if isinstance(ev, Result))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="hog")
    ap.add_argument("--layer", default="hog")
    ap.add_argument("--photos", required=True, help="the project's photo folder (benchmarks/fetch_photos.py)")
    ap.add_argument("--images", type=int, default=4, help="columns: held-out photos, one per category")
    ap.add_argument("--preset", default="fast", help="optimisation preset (default: as decoder_table.py)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    out = Path(args.out or ROOT / "docs" / "images" / f"figure_methods_{args.model}.png")
    rep = R.get(args.model)
    decoders = []
    for path in D.shipped_decoders().values():
        loaded = D.load_checkpoint(path)
        if (loaded.meta["representation"], loaded.meta["layer"]) == (rep.name, args.layer):
            decoders.append(loaded)
    if not decoders:
        raise SystemExit(f"no shipped decoder for {rep.name} {args.layer}")
    decoders.sort(key=lambda d: D.training_loss(d.meta) == "pixel")          # pixel-loss last of the decoders
    size = int(decoders[0].meta["input_size"])
    preset = args.preset
    params = dataclasses.replace(optimize.PRESETS.get(preset), size=size, restarts=1)
    pixel = next((d for d in decoders if D.training_loss(d.meta) == "pixel"), decoders[-1])
    rows: dict[str, list[np.ndarray]] = {"photo": []}
    _, held = photo_split(Path(args.photos))
    firsts = {}
    for path in held:                               # names begin with their category: the first of each
        firsts.setdefault(path.name.rsplit("-", 1)[0], path)
    chosen = list(firsts.values())[:args.images]
    for path in chosen:
        name = path.name
        img = load_image(str(path))
        rows["photo"].append(resize_center_crop(img, size))
        for d in decoders:
            rows.setdefault(f"decoder ({D.training_loss(d.meta)})", []).append(
                final(D.run(rep, img, args.layer, d, size=size)).images[0])
        rows.setdefault(f"optimisation ({preset})", []).append(final(optimize.run(rep, img, args.layer,
                                                                                   params)).images[0])
        start = final(D.run(rep, img, args.layer, pixel, size=size)).images[0]
        rows.setdefault("hybrid (decoder, then optimisation)", []).append(
            final(optimize.run_batch(rep, [optimize.Target(img, start=start)], args.layer, params)).images[0])
        print(f"{name}: done", flush=True)
    what = rep.name if args.layer == rep.name else f"{rep.name} {args.layer}"
    save_grid(out, rows, f"Reconstructions from {what}: {len(chosen)} held-out photos")
    print(f"wrote {out}")
    return 0


def save_grid(out: Path, rows: dict[str, list[np.ndarray]], title: str) -> None:
    from PIL import Image, ImageDraw, ImageFont

    pad, title_h = 6, 28
    font = ImageFont.load_default(size=15)
    label_w = int(max(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(k, font=font) for k in rows)) + 2 * pad
    side = rows["photo"][0].shape[0]
    cols = len(rows["photo"])
    w = label_w + cols * (side + pad) + pad
    h = title_h + len(rows) * (side + pad) + pad
    canvas = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 6), title, fill="black", font=font)
    for r, (label, images) in enumerate(rows.items()):
        y = title_h + pad + r * (side + pad)
        draw.text((pad, y + side // 2 - 8), label, fill="black", font=font)
        for c, im in enumerate(images):
            canvas.paste(Image.fromarray(to_uint8(np.clip(im, 0, 1))), (label_w + pad + c * (side + pad), y))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, optimize=True)


if __name__ == "__main__":
    sys.exit(main())
