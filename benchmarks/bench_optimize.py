"""Speed of the optimisation method, measured in one run.

    python benchmarks/bench_optimize.py [--model efficientnet_lite0] [--layer blocks.3] [--size 224]
                                        [--iters 60] [--device cpu] [--random-weights] [--quality]

1. Milliseconds per iteration for 1 and 4 restarts vs the floor: a forward pass of the frozen
   network truncated at the layer plus a backward pass to the input images, same batch, size and
   device — the least any inversion method must spend per iteration.  The ratio says how much
   the method adds (regularisers, optimiser, schedule, bookkeeping).
   On a CUDA device each row is timed twice: eager (Python launches every kernel of every step)
   and as one captured CUDA graph per step (``cuda_graph``, the default there).
2. Several images at one layer (--images N, default 4): the N images optimised as one batch
   (``run_batch``, what the CLI's several images and the window's images sweep do) against one
   run after another, whole runs (set-up, iterations, metrics), fastest of --rounds alternating
   rounds; the ratio is sequential / batched.
3. With --quality: time-to-quality — seconds until the representation error of the iterate
   (√(feature term / C), before clipping to the display range) falls below --threshold — for
   each preset, one restart each, on efficientnet_lite0 at three depths and on AlexNet with
   random weights at conv3/conv5.

Prints figures; never part of the test pass/fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from invgui.core import representations as R  # noqa: E402
from invgui.core.events import Result, Step  # noqa: E402
from invgui.core.images import load_image  # noqa: E402
from invgui.core.methods.optimize import PRESETS, OptimizeParams, run  # noqa: E402


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


CHUNK = 10          # iterations per timed chunk (= the method's preview/flush interval)
clock = time.perf_counter


def interleaved_ms(rep, image, layer: str, size: int, chunks: int, device: str, restarts: int = 1,
                   channels_last: bool = False, graph: bool = True, base: OptimizeParams | None = None
                   ) -> tuple[float, float]:
    """(floor, method) ms per iteration, timed in alternating chunks of CHUNK iterations.

    The method's generator is paused between flushes, so a chunk of the bare forward+backward
    and a chunk of the method alternate and see the same machine conditions.  Each figure is the
    fastest chunk (timeit's convention): on a shared machine slower chunks measure the neighbours.
    """
    p = dataclasses.replace(base or OptimizeParams(), iters=(chunks + 3) * CHUNK, size=size, preview_every=CHUNK,
                            restarts=restarts, channels_last=channels_last, cuda_graph=graph)
    gen = run(rep, image, layer, p, device=device)
    x = torch.rand(restarts, 3, size, size, device=device, requires_grad=True)

    def method_chunk() -> None:
        for ev in gen:
            if isinstance(ev, Step) and ev.preview is not None:
                return
            if isinstance(ev, Result):             # ended before its iterations: a figure of it would be 0 ms
                raise SystemExit(f"the method's run ended early ({ev.message or 'stopped'}); try --preset fast")

    def floor_chunk() -> None:
        for _ in range(CHUNK):
            rep.features(x, layer).square().sum().backward()
            x.grad = None

    floors, methods = [], []
    for k in range(chunks + 2):
        for fn, out in ((floor_chunk, floors), (method_chunk, methods)):
            sync(device)
            t = clock()
            fn()
            sync(device)
            if k >= 2:                               # warm-up chunks
                out.append(1000 * (clock() - t) / CHUNK)
    gen.close()
    return min(floors), min(methods)


def time_to_quality(rep, image, layer: str, p: OptimizeParams, threshold: float, device: str, graph: bool = True):
    """(seconds, iterations) until the iterate's representation error < threshold, or (None, final error)."""
    p = dataclasses.replace(p, restarts=1, preview_every=2, cuda_graph=graph)
    for ev in run(rep, image, layer, p, device=device):
        if isinstance(ev, Result):
            return None, ev.metrics["representation_error"]
        if hasattr(ev, "losses") and (max(ev.losses["feature"], 0) / p.feature_weight) ** 0.5 < threshold:
            return ev.elapsed, ev.i


def quality_table(image, threshold: float, device: str, graph: bool = True) -> None:
    cases = [("efficientnet_lite0", False, layer) for layer in ("blocks.1", "blocks.3", "blocks.5")]
    cases += [("alexnet", True, layer) for layer in ("conv3", "conv5")]
    mode = ("CUDA graph" if graph else "eager") if device.startswith("cuda") else "cpu"
    print(f"\ntime-to-quality ({mode}): seconds (iterations) until representation error < {threshold}, "
          "sample:chelsea, 224×224, one restart")
    print(f"  {'model':<28}{'layer':<10}" + "".join(f"{n:>18}" for n in PRESETS.names()))
    reps = {}
    for model, rnd, layer in cases:
        rep = reps.setdefault(model, R.get(model, random_weights=rnd).to(device))
        cells = []
        for name in PRESETS.names():
            t, k = time_to_quality(rep, image, layer, PRESETS.get(name), threshold, device, graph)
            cells.append(f"{t:8.2f} s ({k:>3})" if t is not None else f"never (end {k:.2f})")
        label = model + (" (random)" if rnd else "")
        print(f"  {label:<28}{layer:<10}" + "".join(f"{c:>18}" for c in cells), flush=True)


def images_rows(rep, layer: str, size: int, n: int, iters: int, device: str, rounds: int) -> None:
    """Several images: one batch vs one run after another (whole runs, alternating rounds)."""
    from invgui.core.methods.optimize import Target, run_batch

    names = ("chelsea", "coffee", "astronaut", "rocket", "camera", "horse", "coins", "moon")
    images = [load_image(f"sample:{names[i % len(names)]}") for i in range(n)]
    p = dataclasses.replace(PRESETS.get("fast"), iters=iters, size=size, preview_every=CHUNK)

    def sequential() -> None:
        for img in images:
            for _ in run(rep, img, layer, p, device=device):
                pass

    def batched() -> None:
        for _ in run_batch(rep, [Target(img) for img in images], layer, p, device=device):
            pass

    for fn in (sequential, batched):               # warm-up (allocator, cuDNN's choices)
        fn()
    best = {"sequential": float("inf"), "batched": float("inf")}
    for _ in range(rounds):
        for name, fn in (("sequential", sequential), ("batched", batched)):
            sync(device)
            t = clock()
            fn()
            sync(device)
            best[name] = min(best[name], clock() - t)
    print(f"{n} images at {layer}, fast preset, {iters} iterations each (whole runs, best of {rounds}):")
    for name, sec in best.items():
        print(f"  {name:>10} {sec:8.2f} s  {sec / (n * iters) * 1000:8.2f} ms per image-iteration")
    print(f"  one batch is {best['sequential'] / best['batched']:.2f}× one run after another", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--layer", default=None)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--iters", type=int, default=100, help="timed iterations per measurement")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--quality", action="store_true", help="also print the time-to-quality table")
    ap.add_argument("--channels-last", action="store_true",
                    help="also time one restart with the channels-last memory layout")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--preset", default="default", choices=PRESETS.names(),
                    help="the method's schedule for the ms-per-iteration rows (its cost does not depend on the "
                         "values, only on the optimiser and priors; a preset that diverges ends the run early)")
    ap.add_argument("--images", type=int, default=4, help="images for the batch-vs-sequential rows (0: skip)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of the images rows")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    rep = R.get(a.model, random_weights=a.random_weights).to(a.device)
    layer = rep.resolve_layer(a.layer)
    image = load_image("sample:chelsea")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {a.device}")
    print(f"{a.model} {layer} at {a.size}×{a.size}, {a.preset} preset: ms per iteration (all restarts together)")
    cuda = a.device.startswith("cuda")
    if cuda:
        print(f"GPU: {torch.cuda.get_device_name(a.device)}; floor = eager forward+backward; "
              "speed-up = eager method / graph method")
    print(f"  {'restarts':>8} {'mode':>7} {'floor':>10} {'method':>10} {'ratio':>7}")
    chunks = max(3, a.iters // CHUNK)
    for restarts in ((1, 8) if cuda else (1, 4)):
        eager = None
        for graph in ((False, True) if cuda else (False,)):
            floor, method = interleaved_ms(rep, image, layer, a.size, chunks, a.device, restarts=restarts,
                                           graph=graph, base=PRESETS.get(a.preset))
            mode = ("graph" if graph else "eager") if cuda else "cpu"
            extra = f"   speed-up {eager / method:.2f}×" if graph else ""
            print(f"  {restarts:>8} {mode:>7} {floor:10.2f} {method:10.2f} {method / floor:7.2f}{extra}", flush=True)
            eager = method
    if a.channels_last:
        floor, method = interleaved_ms(rep, image, layer, a.size, chunks, a.device, channels_last=True)
        print(f"  {'1, channels-last':>8} {floor:10.2f} {method:10.2f} {method / floor:7.2f}", flush=True)
        rep.set_channels_last(False)
    if a.images > 1:
        images_rows(rep, layer, a.size, a.images, max(CHUNK, a.iters // 2), a.device, a.rounds)
    if a.quality:
        for graph in ((False, True) if cuda else (True,)):
            quality_table(image, a.threshold, a.device, graph)


if __name__ == "__main__":
    main()
