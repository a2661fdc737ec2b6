"""``invgui train-decoder``: train an up-convolutional decoder (Dosovitskiy & Brox) for a layer on a
folder of images; under torchrun every process trains, process 0 alone talks and writes."""

from __future__ import annotations

import argparse
import os
import sys

from ..core.errors import InvguiError
from .common import Model, add_device_arg, add_model_args, add_quiet_arg, check_destinations, pick_device

NAME = "train-decoder"


def add_parser(sub) -> None:
    from ..core.methods.decoder_params import TrainParams
    from ..core.params import add_arguments

    p = sub.add_parser(NAME, help="train a decoder (up-convolutional network) for a layer")
    add_model_args(p)
    p.add_argument("--layer", "-l", default=None, help="layer (default: the model's default layer)")
    p.add_argument("--data", required=True, metavar="DIR", help="folder of training images (searched recursively; "
                   "unreadable files are skipped and counted)")
    p.add_argument("--held-out-data", metavar="DIR", help="folder of held-out images (default: a random "
                   "--held-out fraction of --data)")
    p.add_argument("--out", "-o", required=True, metavar="FILE.pt", help="checkpoint to write (after every epoch)")
    p.add_argument("--resume", metavar="FILE.pt", help="continue training this checkpoint up to --epochs")
    p.add_argument("--init", metavar="FILE.pt", help="start from this trained decoder's weights (its width and size; "
                   "a new optimiser and schedule): fine-tune it, e.g. a shipped one with --feature-weight and "
                   "--adversarial-weight")
    add_device_arg(p, "; under torchrun each process takes the GPU of its local rank")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="data worker processes per training "
                   "process (default: the usable cores beside the training processes, minus one; 0 = crop in the "
                   "training process); the crops and the result do not depend on it")
    add_quiet_arg(p)
    add_arguments(p, TrainParams)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..core.events import Result, Status, Step
    from ..core.methods import decoder as D
    from ..core.methods.decoder.data import check_workers
    from ..core.params import from_arguments
    from ..core.results import Metrics

    params = from_arguments(D.TrainParams, args, D.TrainParams())
    device = pick_device(args.device)
    check_workers(args.workers)                   # before the model or any data is loaded
    # Under torchrun every process runs this command; process 0 alone talks and writes.
    lead = int(os.environ.get("RANK", "0") or 0) == 0
    quiet = args.quiet or not lead
    if lead:
        check_destinations([args.out])       # a checkpoint is written after every epoch
    rep = Model.of(args).build()
    bar, result = None, None
    try:
        for ev in D.train(rep, args.layer, args.data, args.out, params, device=device,
                          resume=args.resume, held_out_data=args.held_out_data, workers=args.workers,
                          init=args.init):
            if isinstance(ev, Status) and not quiet:
                print(ev.message, file=sys.stderr)
            elif isinstance(ev, Step) and not quiet:
                if bar is None:
                    bar = tqdm(total=ev.total, initial=ev.i - 1, unit="step", file=sys.stderr, mininterval=0.5)
                post = {"loss": f"{ev.losses['train']:.4f}"}
                if "held_out" in ev.losses:
                    post["held_out"] = f"{ev.losses['held_out']:.4f}"
                bar.set_postfix(post, refresh=False)
                bar.update(ev.i - bar.n)
            elif isinstance(ev, Result):
                result = ev
    finally:
        if bar is not None:
            bar.close()
    if not lead:
        return 0
    if result is None:
        raise InvguiError("training ended without a result")
    m = Metrics.of(result)
    held = f"held-out MSE {m.held_out_mse:.4f}" if m.held_out_mse is not None else "no held-out images"
    if m.held_out_normalised_error is not None:
        held += f", normalised reconstruction error {m.held_out_normalised_error:.3f}"
    print(f"wrote {args.out}: {result.record['architecture']} decoder for {rep.name} {result.record['layer']}, "
          f"{result.record['epochs']} epoch(s) on {m.training_images} images"
          + (f" ({m.skipped} unreadable skipped)" if m.skipped else "")
          + f"; {held}; {m.images_per_second:.0f} images/s")
    if result.message:
        print(result.message, file=sys.stderr)
    return 0
