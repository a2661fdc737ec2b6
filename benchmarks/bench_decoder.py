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
    ap.add_argument("--pipeline-widths", default="",
                    help="decoder widths of the pipeline row, comma-separated (default: 0.25 on the CPU; 0.25 "
                         "and 1, the paper's, on CUDA)")
    ap.add_argument("--precision-rows", action=argparse.BooleanOptionalAction, default=None,
                    help="bare training step in fp32/bf16 × contiguous/channels-last (default: on CUDA)")
    ap.add_argument("--precision-steps", type=int, default=None,
                    help="steps of the fp32-vs-bf16 held-out check (default: 400 on CUDA, 0 on the CPU)")
    ap.add_argument("--precision", default="fp32", choices=D.train_module.PRECISIONS,
                    help="precision of the pipeline row (both sides)")
    ap.add_argument("--channels-last", action="store_true", help="channels-last layout in the pipeline row")
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
                # The lambdas run at once, inside this iteration: late binding cannot bite.
                rates[f"fwd{b}"] = b / best_time(lambda: net(phi, (size, size)), dev, args.repeats)  # noqa: B023
                rates[f"e2e{b}"] = b / best_time(lambda: net(rep.features(x, layer), (size, size)),  # noqa: B023
                                                 dev, args.repeats)
        train_step = _bare_step(rep, layer, size, float(meta["width"]), 64, dev)     # as decoder.train builds it
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
    cuda = dev.startswith("cuda")
    if args.precision_rows if args.precision_rows is not None else cuda:
        precision_rows(args, dev)
    folder = None
    if args.pipeline_images:
        folder = Path(args.pipeline_dir
                      or Path(os.environ.get("TMPDIR", "/tmp")) / f"invgui-jpegs-{args.pipeline_images}")
        make_jpegs(folder, args.pipeline_images)
        widths = args.pipeline_widths or ("0.25,1" if cuda else "0.25")
        for w in widths.split(","):
            pipeline_row(args, dev, folder, float(w))
    steps = args.precision_steps if args.precision_steps is not None else (400 if cuda else 0)
    if steps and folder is not None:
        precision_check(dev, folder, steps)
    return 0


SPEEDS = (("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True))


def _bare_step(rep, layer: str, size: int, width: float, batch: int, dev: str, precision: str = "fp32",
               channels_last: bool = False):
    """The bare training step of decoder.train (features, decoder under its precision, MSE, Adam) on
    one batch already on the device, as train() builds it."""
    T = D.train_module

    info = rep.layer_info(layer, size)
    family = R.REGISTRY[rep.name].family if rep.name in R.REGISTRY else "cnn"
    net = D.nets.build(D.nets.kind_for(family, info.shape), info.shape, info.stride or 1, width).to(dev)
    p = dataclasses.replace(D.TrainParams(), precision=precision, channels_last=channels_last)
    bf16, last = T.speed_settings(p, torch.device(dev))
    if last:
        net.to(memory_format=torch.channels_last)
    model = T._Model(net, rep, layer, False, bf16, last)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.rand(batch, 3, size, size, device=dev)

    def step():
        loss = F.mse_loss(model(x)[0], x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def precision_rows(args, dev: str) -> None:
    """Images/s of the bare training step per precision × memory layout, for two decoders at two widths."""
    print(f"\ntraining step by precision and layout ({dev}, batch 64, images/s, best of {max(2, args.repeats // 3)}):")
    cases = [("hog", "hog", 128, 0.25), ("hog", "hog", 128, 1.0),
             ("efficientnet_lite0", "blocks.5", 96, 0.25), ("efficientnet_lite0", "blocks.5", 96, 1.0)]
    print(f"{'decoder':<34} " + " ".join(f"{a + '/' + ('cl' if b else 'nchw'):>11}" for a, b in SPEEDS)
          + "  best/fp32")
    for model, layer, size, width in cases:
        rep = R.get(model).to(dev)
        rates = []
        for precision, last in SPEEDS:
            step = _bare_step(rep, layer, size, width, 64, dev, precision, last)
            rates.append(64 / best_time(step, dev, max(2, args.repeats // 3)))
        print(f"{model + ' ' + layer + f' w{width:g} {size}px':<34} " + " ".join(f"{r:>11.0f}" for r in rates)
              + f"  {max(rates) / rates[0]:>8.2f}", flush=True)


def precision_check(dev: str, folder: Path, steps: int) -> None:
    """Held-out MSE after the same ``steps`` of training: float32 vs bf16 autocast with channels-last."""
    from invgui.core.events import Step

    held = [f"sample:{n}" for n in ("chelsea", "coffee", "rocket")]
    rep = R.get("hog")
    print(f"\nheld-out check: hog decoder, 128 px, width 1, batch 64, {steps} steps on {folder.name}; "
          "held out: chelsea, coffee, rocket")
    for precision in ("fp32", "bf16"):
        params = dataclasses.replace(D.TrainParams(), size=128, width=1.0, batch=64, crops_per_image=1,
                                     held_out=0.0, epochs=1000, preview_every=100000, precision=precision,
                                     channels_last=precision == "bf16")
        out = folder.parent / f"invgui-bench-precision-{precision}.pt"
        n, t0, res = 0, time.perf_counter(), None

        def stop():
            return n >= steps          # noqa: B023  (reads the count as it grows in this very loop)

        for ev in D.train(rep, None, folder, out, params, device=dev, held_out_data=held, should_stop=stop):
            if isinstance(ev, Step):
                n += 1
            elif isinstance(ev, Result):
                res = ev
        settings, m = res.record["training"], res.metrics
        print(f"  {precision:<5} ({settings['precision']}, channels-last {settings['channels_last']}): held-out MSE "
              f"{m['held_out_mse']:.4f}, NRE {m.get('held_out_normalised_error', float('nan')):.3f}, "
              f"{steps * 64 / (time.perf_counter() - t0):.0f} images/s over the whole run", flush=True)
        out.unlink(missing_ok=True)


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


def pipeline_row(args, dev: str, folder: Path, width: float) -> None:
    """train-decoder on a folder of JPEGs read lazily vs the bare step, same decoder/batch/device/threads."""
    params = dataclasses.replace(D.TrainParams(), size=128, width=width, batch=64, crops_per_image=1, held_out=0.0,
                                 epochs=1, preview_every=100000, precision=args.precision,
                                 channels_last=args.channels_last)
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
            status = ev.message.split("; ", 1)[-1]
    timed = times[WARMUP:]
    piped = params.batch * (len(timed) - 1) / (timed[-1] - timed[0])
    # The bare step of the same network and precision, on a batch already on the device, over as many steps.
    step = _bare_step(rep, "hog", params.size, width, params.batch, dev, args.precision, args.channels_last)
    for _ in range(WARMUP):
        step()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(len(timed) - 1):
        step()
    sync(dev)
    bare = params.batch * (len(timed) - 1) / (time.perf_counter() - t0)
    out.unlink(missing_ok=True)
    print(f"\npipeline: hog decoder, 128 px, width {width:g}, batch 64, {dev}, {torch.get_num_threads()} torch "
          f"threads, {status}; {args.pipeline_images} JPEGs read lazily")
    print(f"{'train-decoder (files → workers → step)':<42} {piped:>8.0f} images/s")
    print(f"{'bare training step':<42} {bare:>8.0f} images/s")
    print(f"{'ratio':<42} {piped / bare:>8.2f}   (target ≥ 0.8; mean of {len(timed) - 1} steps each)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
