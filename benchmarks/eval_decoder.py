"""Decoder vs optimisation on held-out photos (paper 001's Table 2 claim), printed as a table.

    python benchmarks/eval_decoder.py [--decoders hog,efficientnet_lite0-blocks.1,...]
                                      [--images chelsea,coffee,rocket] [--preset mv2015-shallow]

For each shipped decoder (resources/decoders) and each held-out photo — by default the three
photos train_default_decoders.py keeps out of training — reconstructs the photo with the decoder
(one forward pass), with the optimisation method at the same input size, and with the hybrid
method (the same optimisation started from the decoder's reconstruction), and prints, as
mean ± std over the photos: the normalised reconstruction error ‖x − x̂‖/N (N = mean distance
between pairs of these photos at that size; paper 001, Table 2), the representation error of the
reconstruction, PSNR, and the seconds per image.  Lower normalised error is better.  Prints
figures; never part of the test pass/fail.
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
    header = (f"{'decoder':<30} {'method':<32} {'size':>4} {'norm. rec. error':>17} {'rep. error':>15} "
              f"{'PSNR dB':>12} {'s/image':>8}")
    print(header)
    print("-" * len(header))
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
        rows = {"decoder": [], f"optimisation ({preset})": [], "hybrid (decoder, then the same)": []}
        for img in photos.values():
            t0 = time.perf_counter()
            res = final(D.run(rep, img, layer, loaded, size=size, device=args.device, eval_distance=n))
            rows["decoder"].append((res.metrics, time.perf_counter() - t0))
            decoded, dec_s = res.images[0], time.perf_counter() - t0
            t0 = time.perf_counter()
            res = final(optimize.run_batch(rep, [optimize.Target(img, start=decoded)], layer, params,
                                           device=args.device, eval_distance=n))
            rows["hybrid (decoder, then the same)"].append((res.metrics, dec_s + time.perf_counter() - t0))
            t0 = time.perf_counter()
            res = final(optimize.run(rep, img, layer, params, device=args.device, eval_distance=n))
            rows[f"optimisation ({preset})"].append((res.metrics, time.perf_counter() - t0))
        for method, vals in rows.items():
            nre = [m["normalised_reconstruction_error"] for m, _ in vals]
            err = [m["representation_error"] for m, _ in vals]
            ps = [m["psnr"] for m, _ in vals]
            secs = [s for _, s in vals]
            print(f"{name:<30} {method:<32} {size:>4} {_pm(nre, '.3f'):>17} {_pm(err, '.3f'):>15} "
                  f"{_pm(ps, '.1f'):>12} {np.mean(secs):>8.3f}", flush=True)
    return 0


def _pm(values, fmt: str) -> str:
    return f"{format(float(np.mean(values)), fmt)} ± {format(float(np.std(values)), fmt)}"


if __name__ == "__main__":
    sys.exit(main())
