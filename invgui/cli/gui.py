"""``invgui gui [IMAGE]`` (and ``invgui`` alone): open the main window; ``--screenshot`` runs, saves
a PNG of the window (the main one, Compare after a sweep, the training dialog) and exits."""

from __future__ import annotations

import argparse

from ..core.errors import InvguiError
from .common import add_model_args

NAME = "gui"


def add_parser(sub) -> None:
    from ..core.methods import registry as M
    from ..core.methods.optimize_params import PRESETS

    p = sub.add_parser(NAME, help="open the main window")
    p.add_argument("image", nargs="?", default=None, help="image to open (default sample:chelsea)")
    p.add_argument("--screenshot", metavar="PNG", help="run, save a PNG of the whole window, and exit")
    p.add_argument("--iters", type=int, default=None, help="iterations to run (with --screenshot)")
    add_model_args(p, default=None)
    p.add_argument("--layer", "-l", default=None, help="layer to start on (default: the model's mid-depth "
                   "layer; `invgui layers MODEL` lists them)")
    p.add_argument("--preset", default=None, choices=PRESETS.names(), help="optimisation preset to start with")
    p.add_argument("--window", default=None, metavar="SPEC", help="neuron window to start with (centre:N or "
                   "x0,y0,x1,y1 in cells of the layer's map or patch grid)")
    p.add_argument("--channels", default=None, metavar="SPEC", help="channels to start with (e.g. 0-9)")
    p.add_argument("--method", default=None, choices=M.names(), help="method to start with")
    p.add_argument("--probe", default=None, help="with --screenshot and --method decoder: also run this probe")
    p.add_argument("--other", default=None, help="second image for --probe interpolate")
    p.add_argument("--results", default=None, metavar="DIR", help="open a results folder of `invgui evaluate` in "
                   "the Compare window (with --screenshot: a PNG of it, a run of its deepest layer picked)")
    p.add_argument("--view", default="main", choices=("main", "compare", "train"),
                   help="with --screenshot: the main window, the comparison view after a methods × layers "
                        "sweep, or the decoder training dialog after a short training")


def run(args: argparse.Namespace) -> int:
    # Refused like every other command's out-of-range values (exit 2), before a window opens.
    from ..core.files import check_writable
    from ..core.images import check_source
    from ..core.methods.optimize_params import OptimizeParams
    from ..core.params import from_dict

    if args.iters is not None:
        try:
            from_dict(OptimizeParams, {"iters": args.iters})
        except ValueError as e:
            raise InvguiError(f"--iters {args.iters}: {e}") from None
    for source in (args.image, args.other):
        if source:
            check_source(source)
    if args.screenshot:
        check_writable(args.screenshot, "screenshot")
    from ..app import run_gui

    if args.trust_torchscript and args.model and args.model.startswith("torchscript:"):
        from ..core.representations import trust

        trust(args.model[len("torchscript:"):])
    return run_gui(image=args.image, screenshot=args.screenshot, iters=args.iters, model=args.model,
                   preset=args.preset, method=args.method, probe=args.probe, other=args.other, view=args.view,
                   layer=args.layer, weights=args.weights, random_weights=args.random_weights,
                   rep_params=args.rep_param, window=args.window, channels=args.channels, results=args.results)
