"""The image priors side by side on held-out photos: pixels with α-norm + TV^β (Mahendran &
Vedaldi), the decorrelated Fourier spectrum (Olah et al. 2017; Lucent's default), its phase alone
under natural photos' magnitude (MACO), and the Deep Image Prior — printed as a table.

    python benchmarks/eval_priors.py [--layers conv_stem,blocks.1,blocks.3,blocks.5,hog]
                                     [--images chelsea,coffee,rocket] [--size 128] [--iters 200]
                                     [--priors pixel,fourier,fourier-tv,maco,dip]
                                     [--figure PNG --figure-layer blocks.3]

Each prior runs at its own settings (its preset: ``fast`` for pixels — Adam with TV^β, invgui's
quickest pixel setting — ``lucent`` for the spectrum, ``fourier-tv`` for the spectrum with the
2015 α-norm and TV^β on the rendered image, ``lucent`` with the natural magnitude for MACO, ``dip``
for the generator), one restart, the same number of iterations, on EfficientNet-Lite0
layers (ImageNet weights) and HOG, at one input side.  For each prior and layer, mean ± std over the
photos of:

  * the normalised reconstruction error ‖x − x̂‖/N (paper 001; N over these photos at that side);
  * the representation error ‖Φ(x̂) − Φ(x)‖/‖Φ(x)‖ at the end, and the PSNR;
  * the perceptual distance in EfficientNet-Lite1 blocks.3, as eval_decoder.py measures it (a
    network none of these runs inverts; Lite0 blocks.3 with a note when the package is missing);
  * the iterations and seconds until the representation error first fell below 0.5 (from the
    per-iteration feature term, whose square root it is for the invert objective; "—" if never);
  * milliseconds per iteration.

``--figure`` also writes a figure: rows the priors, columns the photos, at ``--figure-layer``.
Prints figures; never part of the test pass/fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from eval_decoder import _judge, _judged  # noqa: E402

from invgui.core import representations as R  # noqa: E402
from invgui.core.events import Result  # noqa: E402
from invgui.core.images import load_image, resize_center_crop  # noqa: E402
from invgui.core.methods import optimize  # noqa: E402
from invgui.core.metrics import mean_pairwise_distance  # noqa: E402

PRIORS = {"pixel": ("fast", {}), "fourier": ("lucent", {}), "fourier-tv": ("fourier-tv", {}),
          "maco": ("lucent", {"magnitude": "natural"}),
          "dip": ("dip", {})}
THRESHOLD = 0.5


def final(gen) -> Result:
    return next(ev for ev in gen if isinstance(ev, Result))


def time_to(history: list[float], seconds: float, threshold: float = THRESHOLD) -> tuple[float, float]:
    """(iterations, seconds) until the representation error — √ of the feature term (feature
    weight 1, the invert objective) — first fell below ``threshold``; NaN if it never did.  The
    run's time is spread evenly over its iterations."""
    for i, f in enumerate(history):
        if math.sqrt(max(f, 0.0)) < threshold:
            return i + 1, seconds * (i + 1) / len(history)
    return float("nan"), float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="conv_stem,blocks.1,blocks.3,blocks.5,hog")
    ap.add_argument("--images", default="chelsea,coffee,rocket")
    ap.add_argument("--priors", default=",".join(PRIORS))
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--figure", default="")
    ap.add_argument("--figure-layer", default="blocks.3")
    args = ap.parse_args()
    photos = {n: resize_center_crop(load_image(f"sample:{n}"), args.size) for n in args.images.split(",") if n}
    n_dist = mean_pairwise_distance(list(photos.values()))
    judge, judge_name = _judge()
    lite0, hog = R.get("efficientnet_lite0"), R.get("hog")
    print(f"# eval_priors: held-out photos {', '.join(photos)} at {args.size} px, {args.iters} iterations, one "
          f"restart; torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, cpu")
    print(f"# judge dist.: the perceptual distance in {judge_name}")
    header = (f"{'layer':<10} {'prior':<10} {'preset':<10} {'norm. rec. error':>17} {'rep. error':>15} {'PSNR dB':>12} "
              f"{'judge dist.':>13} {'it to 0.5':>10} {'s to 0.5':>9} {'ms/it':>7}")
    print(header)
    print("-" * len(header))
    figure: dict[str, list[np.ndarray]] = {}
    for layer in args.layers.split(","):
        rep = hog if layer == "hog" else lite0
        for prior in args.priors.split(","):
            preset, extra = PRIORS[prior]
            p = dataclasses.replace(optimize.PRESETS.get(preset), iters=args.iters, size=args.size, restarts=1,
                                    preview_every=args.iters, **extra)
            rows = []
            for img in photos.values():
                res = final(optimize.run(rep, img, layer, p, eval_distance=n_dist))
                its, s_to = time_to(res.history["feature"], res.metrics["seconds"])
                rows.append((res.metrics, _judged(judge, img, res.images[0])[0], its, s_to,
                             1000 * res.metrics["seconds"] / max(res.metrics["iterations"], 1)))
                if args.figure and layer == args.figure_layer:
                    figure.setdefault(prior, []).append(res.images[0])
            col = list(zip(*rows, strict=True))
            nre = [m["normalised_reconstruction_error"] for m in col[0]]
            err = [m["representation_error"] for m in col[0]]
            ps = [m["psnr"] for m in col[0]]
            print(f"{layer:<10} {prior:<10} {preset:<10} {_pm(nre, '.3f'):>17} {_pm(err, '.3f'):>15} "
                  f"{_pm(ps, '.1f'):>12} {_pm(list(col[1]), '.3f'):>13} {_mean(col[2], '.0f'):>10} "
                  f"{_mean(col[3], '.2f'):>9} {np.mean(col[4]):>7.1f}", flush=True)
    if args.figure:
        _figure(args.figure, photos, figure)
    return 0


def _mean(vals, fmt: str) -> str:
    """The mean over the photos that reached the threshold, and how many did when not all."""
    ok = [v for v in vals if not math.isnan(v)]
    if not ok:
        return "—"
    return format(float(np.mean(ok)), fmt) + ("" if len(ok) == len(vals) else f" ({len(ok)}/{len(vals)})")


def _pm(vals: list[float], fmt: str) -> str:
    return f"{format(float(np.mean(vals)), fmt)} ± {format(float(np.std(vals)), fmt)}"


def _figure(path: str, photos: dict[str, np.ndarray], rows: dict[str, list[np.ndarray]]) -> None:
    """Rows: the photo, then each prior's reconstruction; columns: the photos (labelled)."""
    from invgui.core.compare import labelled_grid
    from invgui.core.files import save_png

    tile = next(iter(photos.values())).shape[0]
    sheet = labelled_grid([list(photos.values()), *rows.values()], ["photo", *rows], list(photos), tile)
    save_png(path, sheet.astype(np.float32) / 255.0)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
