"""Milliseconds per optimisation iteration vs the bare forward+backward floor, in one run.

    python benchmarks/bench_optimize.py [--model efficientnet_lite0] [--layer blocks.3] [--size 224]
                                        [--iters 60] [--device cpu] [--random-weights]

The floor is a forward pass of the frozen network truncated at the layer plus a backward pass
to the input image, on the same input size and device: the least any inversion method must
spend per iteration.  The ratio says how much the method adds (regularisers, optimiser,
schedule, bookkeeping).  Prints figures; never part of the test pass/fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from invgui.core import representations as R  # noqa: E402
from invgui.core.events import Result  # noqa: E402
from invgui.core.images import load_image  # noqa: E402
from invgui.core.methods.optimize import OptimizeParams, run  # noqa: E402


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def floor_ms(rep, layer: str, size: int, iters: int, device: str) -> float:
    x = torch.rand(1, 3, size, size, device=device, requires_grad=True)
    times = []
    for k in range(iters + 5):
        sync(device)
        t = time.perf_counter()
        f = rep.features(x, layer)
        f.square().sum().backward()
        x.grad = None
        sync(device)
        if k >= 5:                                  # warm-up
            times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def method_ms(rep, image, layer: str, size: int, iters: int, device: str) -> float:
    p = dataclasses.replace(OptimizeParams(), iters=iters + 5, size=size, preview_every=10)
    stamps = []
    for ev in run(rep, image, layer, p, device=device):
        if not isinstance(ev, Result) and hasattr(ev, "i") and ev.preview is not None:
            sync(device)
            stamps.append((ev.i, time.perf_counter()))
    (i0, t0), (i1, t1) = stamps[0], stamps[-1]       # skip the first flush (warm-up)
    return 1000 * (t1 - t0) / (i1 - i0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--layer", default=None)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    rep = R.get(a.model, random_weights=a.random_weights).to(a.device)
    layer = rep.resolve_layer(a.layer)
    image = load_image("sample:chelsea")
    floor = floor_ms(rep, layer, a.size, a.iters, a.device)
    method = method_ms(rep, image, layer, a.size, a.iters, a.device)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {a.device}")
    print(f"{a.model} {layer} at {a.size}×{a.size}, batch 1")
    print(f"  bare forward+backward (floor): {floor:8.2f} ms/iteration")
    print(f"  optimisation method:           {method:8.2f} ms/iteration")
    print(f"  ratio method/floor:            {method / floor:8.2f}")


if __name__ == "__main__":
    main()
