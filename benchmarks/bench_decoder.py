"""Speed of the decoder method: reconstruction and training throughput, measured in one run.

    python benchmarks/bench_decoder.py [--decoders hog,...] [--device cpu|cuda] [--repeats 10]

For each shipped decoder (or any decoder file given), on random images at the decoder's size:
  * reconstruction throughput, images per second, at batch 1 and batch 32 — the decoder's forward
    pass alone, and end to end (features Φ(x) + the forward pass);
  * training throughput, images per second (features without gradient, decoder forward and
    backward, an Adam step) at batch 64;
and the optimisation method's time per image at the same size (fast preset, one restart) for
scale.  Each figure is the best of --repeats timed runs after a warm-up.  CUDA is timed with
synchronisation when --device cuda.  Prints figures; never part of the test pass/fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from invgui.core import representations as R  # noqa: E402
from invgui.core.events import Result  # noqa: E402
from invgui.core.methods import decoder as D  # noqa: E402
from invgui.core.methods import optimize  # noqa: E402


def best_time(fn, device: str, repeats: int) -> float:
    fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decoders", default=",".join(D.shipped_decoders()))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    name_dev = torch.cuda.get_device_name() if dev.startswith("cuda") else (platform.processor() or platform.machine())
    print(f"# bench_decoder: device {dev} ({name_dev}), torch {torch.__version__}, {torch.get_num_threads()} threads")
    header = (f"{'decoder':<30} {'size':>4} {'params':>7} {'fwd b1':>9} {'fwd b32':>9} {'e2e b1':>9} "
              f"{'e2e b32':>9} {'train b64':>10} {'optim. s/img':>13}")
    print(header + "\n" + "-" * len(header))
    shipped = D.shipped_decoders()
    for name in args.decoders.split(","):
        loaded = D.load_checkpoint(shipped.get(name, name))
        meta = loaded.meta
        rep = R.get(meta["representation"], params=meta.get("representation_params")).to(dev)
        layer, size = meta["layer"], int(meta["input_size"])
        net = loaded.net.to(dev)
        rates = {}
        for b in (1, 32):
            x = torch.rand(b, 3, size, size, device=dev)
            with torch.no_grad():
                phi = rep.features(x, layer)
                rates[f"fwd{b}"] = b / best_time(lambda: net(phi, (size, size)), dev, args.repeats)
                rates[f"e2e{b}"] = b / best_time(lambda: net(rep.features(x, layer), (size, size)), dev, args.repeats)
        train_net = D.nets.build(meta["architecture"], tuple(meta["feature_shape"]), meta["stride"],
                                 meta["width"]).to(dev)
        opt = torch.optim.Adam(train_net.parameters(), 1e-3)
        x = torch.rand(64, 3, size, size, device=dev)

        def train_step():
            with torch.no_grad():
                f = rep.features(x, layer)
            loss = F.mse_loss(train_net(f, (size, size)), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        rates["train"] = 64 / best_time(train_step, dev, max(2, args.repeats // 3))
        opt_params = dataclasses.replace(optimize.PRESETS.get("fast"), size=size)
        img = torch.rand(size, size, 3).numpy()
        if rep.differentiable:
            t0 = time.perf_counter()
            next(ev for ev in optimize.run(rep, img, layer, opt_params, device=dev) if isinstance(ev, Result))
            opt_s = f"{time.perf_counter() - t0:.2f}"
        else:
            opt_s = "n/a"
        print(f"{name:<30} {size:>4} {meta['parameters'] / 1e6:>6.2f}M {rates['fwd1']:>9.0f} {rates['fwd32']:>9.0f} "
              f"{rates['e2e1']:>9.0f} {rates['e2e32']:>9.0f} {rates['train']:>10.0f} {opt_s:>13}", flush=True)
    print("(images per second; fwd = decoder only, e2e = features + decoder; optimisation: fast preset, "
          f"{optimize.PRESETS.get('fast').iters} iterations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
