"""Quality of optimisation-based inversion of the shallow representations, over the sample photos.

    python benchmarks/eval_shallow.py [--reps hog,hogb,dsift] [--presets mv2015-shallow]
                                      [--size 128] [--images astronaut,chelsea,...] [--iters N]

For each representation and preset, inverts every photo and prints, as mean ± std over the
photos:
  * the representation error ‖Φ(x) − Φ0‖/‖Φ0‖ of the reconstruction (paper 000, Table 1 style);
  * the normalised reconstruction error ‖x − x0‖/N (paper 001, Table 2 style), N = the mean
    distance between pairs of the photos at the same size;
  * PSNR, and the seconds per image.
The photos are scikit-image's bundled ones (no download).  Prints figures; never part of the
test pass/fail.
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
from invgui.core.methods.optimize import PRESETS, run  # noqa: E402
from invgui.core.metrics import mean_pairwise_distance  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "moon", "immunohistochemistry")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", default="hog,hogb,dsift")
    ap.add_argument("--presets", default="mv2015-shallow")
    ap.add_argument("--images", default=",".join(PHOTOS))
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--iters", type=int, default=0, help="override the presets' iterations (0: keep)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n for n in args.images.split(",") if n]
    photos = {n: load_image(f"sample:{n}") for n in names}
    distance = mean_pairwise_distance([resize_center_crop(im, args.size) for im in photos.values()])
    print(f"# eval_shallow: {len(names)} photos ({', '.join(names)}) at {args.size}×{args.size}; "
          f"N = {distance:.2f}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, device {args.device}")
    header = (f"{'representation':<15} {'preset':<15} {'iters':>5} {'rep. error':>15} {'start':>6} "
              f"{'norm. rec. error':>17} {'PSNR dB':>12} {'s/image':>8}")
    print(header)
    print("-" * len(header))
    for rep_name in args.reps.split(","):
        rep = R.get(rep_name)
        for preset in args.presets.split(","):
            params = dataclasses.replace(PRESETS.get(preset), size=args.size, restarts=1)
            if args.iters:
                params = dataclasses.replace(params, iters=args.iters)
            errs, starts, nres, psnrs, secs = [], [], [], [], []
            for image in photos.values():
                t0 = time.perf_counter()
                res = next(ev for ev in run(rep, image, None, params, device=args.device, eval_distance=distance)
                           if isinstance(ev, Result))
                secs.append(time.perf_counter() - t0)
                m = res.metrics
                errs.append(m["representation_error"])
                starts.append(m["start_representation_error"])
                nres.append(m["normalised_reconstruction_error"])
                psnrs.append(m["psnr"])
            print(f"{rep_name:<15} {preset:<15} {params.iters + params.stage2_iters:>5} "
                  f"{_pm(errs, '.3f'):>15} {np.mean(starts):>6.3f} {_pm(nres, '.3f'):>17} "
                  f"{_pm(psnrs, '.1f'):>12} {np.mean(secs):>8.2f}", flush=True)
    return 0


def _pm(values: list[float], fmt: str) -> str:
    return f"{format(float(np.mean(values)), fmt)} ± {format(float(np.std(values)), fmt)}"


if __name__ == "__main__":
    sys.exit(main())
