"""Speed of the decoder method: reconstruction and training throughput, measured in one run.

    python benchmarks/bench_decoder.py [--decoders hog,...] [--device cpu|cuda] [--repeats 10]

For each shipped decoder (or any decoder file given), on random images at the decoder's size:
  * reconstruction throughput, images per second, at batch 1 and batch 32 — the decoder's forward
    pass alone, and end to end (features Φ(x) + the forward pass);
  * training throughput, images per second (features without gradient, decoder forward and
    backward, an Adam step) at batch 64;
and the optimisation method's time per image at the same size (fast preset, one restart) for
scale.  Each figure is the best of --repeats timed runs after a warm-up.  CUDA is timed with
synchronisation when --device cuda.

Then the **pipeline row**: ``train-decoder`` (the real ``decoder.train`` loop: files read lazily and
cropped by DataLoader workers, copied to the device, a training step) on a generated folder of
--pipeline-images JPEGs (default 20,000, over the preload limit, so every crop decodes a file),
against the bare training step (features, decoder forward and backward, Adam, on a batch already
on the device) of the same decoder, batch, device and thread count, both as the mean over the same
number of steady-state steps, measured in one run; target: ratio ≥ 0.8.  The folder is made once
(--pipeline-dir, reused when it holds the count) from scikit-image's photos: random crops, flips and
colour gains at ImageNet-like sizes (384×288 or 288×384, JPEG quality 90).  Prints figures; never
part of the test pass/fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time

from pathlib import Path

import numpy as np
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
    ap.add_argument("--pipeline-images", type=int, default=20000, help="JPEGs in the pipeline row's folder (0: skip)")
    ap.add_argument("--pipeline-dir", default="", help="where to make (or find) them (default: under the temp folder)")
    ap.add_argument("--pipeline-steps", type=int, default=30, help="steady-state steps timed (after 5 warm-up)")
    ap.add_argument("--workers", type=int, default=None, help="data workers of the pipeline row (default: train's)")
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
    if args.pipeline_images:
        pipeline_row(args, dev)
    return 0


WARMUP = 5


def make_jpegs(folder: Path, n: int) -> Path:
    """``n`` JPEGs of ImageNet-like size cut from scikit-image's photos (made once, then reused)."""
    from concurrent.futures import ProcessPoolExecutor

    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.jpg")))
    if have >= n:
        return folder
    t0 = time.perf_counter()
    chunks = [(folder, range(k, min(n, k + 500))) for k in range(0, n, 500)]
    with ProcessPoolExecutor(max(1, (os.cpu_count() or 2))) as pool:
        list(pool.map(_write_chunk, chunks))
    print(f"(made {n} JPEGs in {folder} in {time.perf_counter() - t0:.0f} s)", flush=True)
    return folder


def _write_chunk(job) -> None:
    from PIL import Image

    from invgui.core.images import load_image, to_uint8

    folder, indices = job
    names = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "immunohistochemistry", "retina",
             "hubble_deep_field", "brick", "grass", "gravel", "moon", "page", "text")
    photos = [to_uint8(load_image(f"sample:{n}")) for n in names if _has_sample(n)]
    for k in indices:
        target = folder / f"img-{k:06d}.jpg"
        if target.exists():
            continue
        rng = np.random.default_rng(k)
        img = photos[k % len(photos)]
        h, w = img.shape[:2]
        side = int(rng.integers(min(h, w) // 3, min(h, w) + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        out = (384, 288) if rng.random() < 0.6 else (288, 384)
        patch = Image.fromarray(img[y:y + side, x:x + side]).resize(out, Image.Resampling.BILINEAR)
        arr = np.asarray(patch).astype(np.float32) * rng.uniform(0.7, 1.3, 3)
        if rng.random() < 0.5:
            arr = arr[:, ::-1]
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(target, quality=90)


def _has_sample(name: str) -> bool:
    from invgui.core.images import SAMPLES

    return name in SAMPLES


def pipeline_row(args, dev: str) -> None:
    """train-decoder on a folder of JPEGs read lazily vs the bare step, same decoder/batch/device/threads."""
    folder = Path(args.pipeline_dir or Path(os.environ.get("TMPDIR", "/tmp")) / f"invgui-jpegs-{args.pipeline_images}")
    make_jpegs(folder, args.pipeline_images)
    params = dataclasses.replace(D.TrainParams(), size=128, width=0.25, batch=64, crops_per_image=1, held_out=0.0,
                                 epochs=1, preview_every=100000)
    rep = R.get("hog")
    steps = WARMUP + args.pipeline_steps
    times: list[float] = []
    status = ""
    out = folder.parent / "invgui-bench-pipeline.pt"
    from invgui.core.events import Status, Step

    for ev in D.train(rep, None, folder, out, params, device=dev, workers=args.workers,
                      should_stop=lambda: len(times) >= steps):
        if isinstance(ev, Step):
            sync(dev)
            times.append(time.perf_counter())
        elif isinstance(ev, Status) and "data worker" in ev.message:
            status = ev.message.rsplit("; ", 1)[-1]
    timed = times[WARMUP:]
    piped = params.batch * (len(timed) - 1) / (timed[-1] - timed[0])
    # The bare step of the same network, on a batch already on the device, over as many steps.
    info = rep.layer_info("hog", params.size)
    net = D.nets.build(D.nets.kind_for("hog", info.shape), info.shape, info.stride or 1, params.width).to(dev)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.rand(params.batch, 3, params.size, params.size, device=dev)

    def step():
        with torch.no_grad():
            f = rep.features(x, "hog")
        loss = F.mse_loss(net(f, (params.size, params.size)), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(WARMUP):
        step()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(len(timed) - 1):
        step()
    sync(dev)
    bare = params.batch * (len(timed) - 1) / (time.perf_counter() - t0)
    out.unlink(missing_ok=True)
    print(f"\npipeline: hog decoder, 128 px, width 0.25, batch 64, {dev}, {torch.get_num_threads()} torch threads, "
          f"{status}; {args.pipeline_images} JPEGs read lazily")
    print(f"{'train-decoder (files → workers → step)':<42} {piped:>8.0f} images/s")
    print(f"{'bare training step':<42} {bare:>8.0f} images/s")
    print(f"{'ratio':<42} {piped / bare:>8.2f}   (target ≥ 0.8; mean of {len(timed) - 1} steps each)")


if __name__ == "__main__":
    sys.exit(main())
