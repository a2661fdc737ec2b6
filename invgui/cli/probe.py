"""``invgui probe IMAGE``: manipulate Φ0 (binarise, dropout, top-k, interpolate, random, neuron)
and reconstruct every variant with a decoder (and optimisation) — paper 001 §5.3–5.5."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import InvguiError
from .common import DEFAULT_IMAGE, Output, add_device_arg, add_fit_arg, add_model_args, check_destinations, template

NAME = "probe"


def add_parser(sub) -> None:
    from ..core.methods.optimize_params import PRESETS
    from ..core.methods.probe_params import ProbeParams
    from ..core.params import add_arguments

    p = sub.add_parser(NAME, help="manipulate Φ0 and reconstruct it (paper 001 §5.3–5.5)")
    p.add_argument("image", nargs="?", default=DEFAULT_IMAGE, help="image file or sample:NAME")
    add_model_args(p)
    p.add_argument("--layer", "-l", default=None, help="layer (default: the decoder's)")
    p.add_argument("--decoder", metavar="FILE.pt", help="decoder file or shipped name (default: the shipped one "
                   "for the model and layer)")
    p.add_argument("--size", type=int, default=0, help="input side (default: the decoder's)")
    add_fit_arg(p)
    p.add_argument("--preset", default="fast", choices=PRESETS.names(), help="optimisation preset with "
                   "--optimize (default fast)")
    add_arguments(p, ProbeParams)
    p.add_argument("--iters", type=int, default=None, help="optimisation iterations with --optimize")
    p.add_argument("--save-features", metavar="DIR", help="also write each variant as a feature file "
                   "(for `invgui invert --target-features`)")
    add_device_arg(p)
    p.add_argument("--out", "-o", required=True, help="the image strip (PNG; a JSON record is written beside it)")


def request_of(args: argparse.Namespace):
    """The probe's request: its parameters from the flags, the optimisation preset (and --iters)."""
    import dataclasses

    from ..core.methods.optimize_params import PRESETS
    from ..core.methods.probe_params import ProbeParams
    from ..core.methods.registry import PROBE
    from ..core.params import check, from_arguments

    pp = from_arguments(ProbeParams, args, ProbeParams())
    opt = PRESETS.get(args.preset)
    if args.iters is not None:
        opt = check(dataclasses.replace(opt, iters=args.iters), "--iters")
    return PROBE.request(template(args), params=opt, probe=pp, decoder=args.decoder, size=args.size)


def run(args: argparse.Namespace) -> int:
    from ..core.events import Result, Status
    from ..core.export import image_strip, run_record, write_json
    from ..core.files import FileSet, save_png
    from ..core.request import prepare, run_prepared

    req, output = request_of(args), Output.of(args)
    prep = prepare(req)
    out = Path(str(output.out))
    check_destinations([out, out.with_suffix(".json")])
    result = None
    for ev in run_prepared(prep, save_features=args.save_features):
        if isinstance(ev, Status):
            print(ev.message, file=sys.stderr)
        elif isinstance(ev, Result):
            result = ev
    if result is None:
        raise InvguiError("the probe ended without a result")
    rec = result.record
    strip = image_strip(list(result.images), rec["labels"], rows=rec["rows"])
    with FileSet():                           # the strip and its record, or neither
        png = save_png(out, strip)
        js = write_json(out.with_suffix(".json"), run_record(result, image=req.image, decoder=prep.decoder_file,
                                                             command=output.command))
    print(f"{req.probe.probe}: {len(rec['labels'])} reconstruction(s); wrote {png} and {js}")
    if rec.get("feature_files"):
        files = rec["feature_files"]
        print(f"wrote {len(files)} feature file(s) to {args.save_features} (invert one with "
              f"`invgui invert --model {prep.rep.name} --target-features {files[-1]}`)")
    return 0
