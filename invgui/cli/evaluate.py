"""``invgui evaluate``: methods × layers × a folder of images — resumable, shardable (job arrays,
torchrun) — with paper 001's normalised reconstruction error, a summary and its figures."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..core.errors import InvguiError
from .common import Model, add_model_args, add_quiet_arg

NAME = "evaluate"


def add_parser(sub) -> None:
    from ..core.methods import registry as M
    from ..core.methods.optimize_params import PRESETS

    p = sub.add_parser(NAME, help="methods × layers × a folder of images, resumable, shardable "
                       "(paper 001's Fig. 7 at scale)")
    add_model_args(p)
    p.add_argument("--layers", required=True, help="comma-separated layers (e.g. blocks.1,blocks.3,blocks.5)")
    p.add_argument("--methods", default=M.DEFAULT_METHOD, help=f"comma-separated, of {', '.join(M.names())} "
                   f"(default {M.DEFAULT_METHOD})")
    p.add_argument("--data", required=True, help="folder of images (searched recursively; or 'samples')")
    p.add_argument("--limit", type=int, default=0, help="the first N images in path order (default all)")
    p.add_argument("--out", "-o", required=True, help="results folder (runs.csv, summary.csv, records/)")
    p.add_argument("--preset", default=PRESETS.names()[0], choices=PRESETS.names(),
                   help="optimisation preset (flags below override it)")
    p.add_argument("--iters", type=int, default=None, help="optimisation iterations")
    p.add_argument("--size", type=int, default=0, help="input side (default: the model's own; a decoder's own)")
    p.add_argument("--decoder", action="append", metavar="LAYER=FILE",
                   help="the decoder for a layer (repeatable; default: the shipped one)")
    p.add_argument("--shard", default=None, metavar="I/N", help="compute share I of N (job arrays; under torchrun "
                   "the rank and world size choose it)")
    p.add_argument("--save-images", action="store_true", help="also write every reconstruction as a PNG")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default); under torchrun on GPUs "
                   "each process takes the GPU of its local rank")
    p.add_argument("--judge", nargs="?", const="lite1", default="", metavar="MODEL@LAYER",
                   help="also measure the perceptual distance ‖C(x̂) − C(x)‖²/‖C(x)‖² in a network none of the "
                   "methods inverts: EfficientNet-Lite1 blocks.3 when given alone (ImageNet weights), or any "
                   "MODEL@LAYER")
    add_quiet_arg(p)


def plan_of(args: argparse.Namespace):
    """The evaluation plan the flags describe (methods checked, --decoder LAYER=FILE read)."""
    import dataclasses

    from ..core import evaluate as E
    from ..core.methods.optimize_params import PRESETS
    from ..core.methods.registry import method

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    for name in methods:
        method(name)                                       # an unknown one is refused here, named
    params = PRESETS.get(args.preset)
    if args.iters is not None:
        params = dataclasses.replace(params, iters=args.iters)
    decoders = {}
    for spec in args.decoder or []:
        layer, sep, file = spec.partition("=")
        if not sep or not layer.strip() or not file.strip():
            raise InvguiError(f"--decoder {spec!r}: expected LAYER=FILE")
        decoders[layer.strip()] = file.strip()
    model = Model.of(args)
    return E.Plan.of(model=args.model, layers=tuple(x.strip() for x in args.layers.split(",") if x.strip()),
                     methods=methods, data=args.data, limit=args.limit, params=params, decoders=decoders,
                     size=args.size, weights=model.weights, random_weights=model.random_weights,
                     rep_params=dict(model.rep_params), judge=args.judge)


def run(args: argparse.Namespace) -> int:
    from ..core import evaluate as E

    plan = plan_of(args)
    shard, shards, torchrun = shard_of(args.shard)
    device = rank_device(args.device) if torchrun else args.device
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(desc=f"evaluate {args.out}" + (f" [{shard}/{shards}]" if shards > 1 else ""), unit="run")

    def tick(p) -> None:
        if bar is not None:
            bar.total = p.total
            bar.n = p.skipped + p.done
            bar.refresh()

    def say(line: str) -> None:
        (bar.write if bar is not None else print)(line, file=sys.stderr)

    try:
        prog = E.run(plan, args.out, shard=shard, shards=shards, save_images=args.save_images, tick=tick,
                     device=device, torchrun=torchrun, say=say)
    finally:
        if bar is not None:
            bar.close()
    for line in prog.unreadable:
        print(f"skipped (unreadable): {line}", file=sys.stderr)
    skipped = prog.skipped_words()
    print(f"{prog.done} runs computed, {prog.skipped} already there; {skipped or 'no files skipped'}; "
          f"{prog.done / max(prog.seconds, 1e-9):.2f} runs/s")
    summary = Path(args.out) / "summary.csv"
    if summary.is_file():
        print(E.summary_table(summary))
        if plan.judge:
            from ..core.judge import describe

            print(f"judge dist.: ‖C(x̂) − C(x)‖²/‖C(x)‖² with C = {describe(plan.judge)}")
        if shard == 0:
            figures(summary)
    else:
        print("(other shards still running: summary.csv is written when every shard is done)")
    return 0


def figures(summary: Path) -> None:
    """error_vs_layer.png / .svg beside summary.csv (offscreen Qt when there is no display); a
    figure that cannot be drawn is said, and the results stay."""
    if sys.platform.startswith("linux") and not any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY",
                                                                                 "QT_QPA_PLATFORM")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        from ..ui.widgets.figures import error_vs_layer

        png, svg = error_vs_layer(summary, summary.with_name("error_vs_layer.png"),
                                  summary.with_name("error_vs_layer.svg"))
        print(f"wrote {png}, {svg} and the contact sheets {summary.parent}/sheet_*.png")
    except Exception as e:                     # the rows and the summary are written; only the picture failed
        print(f"invgui: could not draw the figure: {type(e).__name__}: {e}", file=sys.stderr)


def rank_device(device: str) -> str:
    """The device of one torchrun process: on GPUs (``auto`` with one, or ``cuda``) the GPU of its
    local rank; ``cpu`` and an explicit ``cuda:N`` are kept."""
    text = device.strip().lower()
    if text in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        return "cpu" if text == "auto" else device
    return device


def shard_of(spec: str | None) -> tuple[int, int, bool]:
    """(shard, shards, under torchrun): --shard I/N, else torchrun's RANK / WORLD_SIZE, else (0, 1)."""
    if spec:
        i, sep, n = spec.partition("/")
        try:
            shard, shards = int(i), int(n)
        except ValueError:
            raise InvguiError(f"--shard {spec!r}: expected I/N, e.g. 0/4") from None
        if not sep or shards < 1 or not 0 <= shard < shards:
            raise InvguiError(f"--shard {spec!r}: I must be in 0…N−1")
        return shard, shards, False
    world = int(os.environ.get("WORLD_SIZE", 1))
    return int(os.environ.get("RANK", 0)), world, world > 1
