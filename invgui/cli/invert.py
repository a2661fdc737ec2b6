"""``invgui invert [IMAGE …]``: reconstruct headless with any method of the registry; a PNG and
a JSON record per image."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..core.errors import InvguiError
from .common import (
    DEFAULT_IMAGE,
    Output,
    add_device_arg,
    add_fit_arg,
    add_model_args,
    add_quiet_arg,
    check_destinations,
    default_out,
    exit_code,
    run_with_progress,
    say_warnings,
    skip,
    summary,
    tell_notes,
    template,
)

NAME = "invert"


def add_parser(sub) -> None:
    from ..core.methods import registry as M
    from ..core.methods.optimize_params import PRESETS, OptimizeParams
    from ..core.params import add_arguments

    p = sub.add_parser(NAME, help="reconstruct an image from a representation, headless")
    p.add_argument("image", nargs="*", default=[DEFAULT_IMAGE],
                   help=f"image file or sample:NAME (default {DEFAULT_IMAGE}); several images are reconstructed "
                        "in one batch (optimisation: every image's restarts together; decoder: one forward "
                        "pass) and --out is then a folder")
    add_model_args(p)
    p.add_argument("--layer", "-l", default=None, help="layer to invert (default: the model's mid-depth layer)")
    p.add_argument("--preset", default=PRESETS.names()[0], choices=PRESETS.names(),
                   help="named parameter set; flags below override it one by one")
    add_device_arg(p)
    p.add_argument("--out", "-o", default=None, help="reconstruction PNG (default: IMAGE_MODEL_LAYER.png)")
    p.add_argument("--metrics", default=None, metavar="JSON",
                   help="JSON record: parameters, versions, per-iteration losses, metrics "
                        "(default: beside --out)")
    p.add_argument("--target-features", metavar="FILE",
                   help="invert these features (.pt from `invgui features`, or .npy) instead of the image's; "
                        "the image, if given, then only serves the metrics")
    p.add_argument("--eval-set", metavar="DIR",
                   help="folder of images (or 'samples') defining N for the normalised reconstruction "
                        "error ‖x − x0‖/N of paper 001 (N: mean distance between pairs of its images)")
    add_quiet_arg(p)
    add_fit_arg(p)
    p.add_argument("--tiff", action="store_true", help="also write every reconstruction as a 16-bit TIFF")
    p.add_argument("--method", default=M.DEFAULT_METHOD, choices=M.names(),
                   help="; ".join(f"{m.name}: {m.title}, {m.help}" for m in M.window_methods()))
    p.add_argument("--decoder", metavar="FILE.pt", help="decoder checkpoint for --method decoder or hybrid, or "
                   "the name of a shipped one (`invgui layers MODEL` lists them; default: the shipped pixel-loss "
                   "one for the model and layer, if any)")
    add_arguments(p, OptimizeParams)
    p.add_argument("--no-graph", dest="param_cuda_graph", action="store_false", default=None,
                   help="run every step eagerly on CUDA (the same as --no-cuda-graph, or INVGUI_NO_CUDA_GRAPH=1)")


def request_of(args: argparse.Namespace):
    """The request the flags describe: the method's (``Method.request``) from the flags' template,
    with the preset's parameters and the flags over them one by one."""
    from ..core.methods.optimize_params import PRESETS, PRIOR_PRESETS, SCHEDULE, OptimizeParams
    from ..core.methods.registry import method
    from ..core.params import from_arguments

    base = PRESETS.get(args.preset)
    prior = getattr(args, "param_parameterisation", None)
    if prior and prior != base.parameterisation:          # its own optimiser and schedule; flags still override
        base = base.changed(parameterisation=prior)
        print(f"note: --parameterisation {prior}: {', '.join(f'{k} {getattr(base, k)}' for k in SCHEDULE)} "
              f"(from the {PRIOR_PRESETS[prior]} preset; flags override)", file=sys.stderr)
    params = from_arguments(OptimizeParams, args, base)
    return method(args.method).request(template(args), params=params, decoder=args.decoder, size=params.size,
                                       target_features=args.target_features, eval_set=args.eval_set)


def run(args: argparse.Namespace) -> int:
    from ..core.export import export_paths
    from ..core.methods.registry import DEFAULT_METHOD
    from ..core.request import prepare

    req, output = request_of(args), Output.of(args)
    prep = prepare(req, on_skip=skip)
    tell_notes(prep)
    suffix = "" if req.method == DEFAULT_METHOD else f"_{req.method}"
    preset = {"preset": args.preset} if req.params is not None else {}
    if len(prep.images) > 1:
        return invert_batch(output, prep, suffix, **preset)
    out = Path(output.out) if output.out else default_out(prep.source, prep.rep.name, prep.layer + suffix)
    check_destinations(export_paths(out, output.metrics))        # before minutes of optimisation
    (result,), stopped = run_with_progress(prep, output.quiet)
    wrote = export_one(output, prep, result, out, **preset)
    if result.message:
        print(result.message, file=sys.stderr)
    print(summary(result))
    print(wrote)
    say_warnings(result)
    return exit_code(stopped)


def export_one(output: Output, prep, result, out: Path, image=None, source=None, **extra) -> str:
    """Write one result (PNG, JSON record, the restarts, the TIFF, the features' picture); what was written."""
    from ..core import representations as R
    from ..core.export import export_result

    if image is None and prep.images:
        image, source = prep.images[0], prep.request.image
    visual = R.feature_picture(prep.rep, image, result.record["input_size"]) if image is not None else None
    png, js = export_result(result, out, output.metrics, visual=visual, image=source, tiff=output.tiff,
                            target_features=prep.request.target_features, eval_set=prep.request.eval_set,
                            command=output.command, **extra)
    restarts = len(result.images) - 1           # a decoder's one image per result
    return (f"wrote {png} and {js}" + (f" (+ {restarts} restarts and the deviation map)" if restarts else "")
            + (" (+ the decoder's reconstruction it started from)" if result.start is not None else "")
            + (" (+ the features' picture)" if visual is not None else ""))


def invert_batch(output: Output, prep, suffix: str, **extra) -> int:
    """Several images in one batch (the decoder: one forward pass; optimisation: every image's
    restarts optimised together); one PNG + JSON per image in the folder --out."""
    from ..core.results import per_image_results

    rep, layer, sources = prep.rep, prep.layer, prep.request.images
    folder = Path(output.out or ".")
    if folder.suffix.lower() in (".png", ".tif", ".tiff", ".jpg"):
        raise InvguiError(f"{folder}: with several images --out is a folder")
    if output.metrics:
        raise InvguiError("with several images each image's JSON record is written beside its PNG in --out; "
                         "drop --metrics")
    outs = [folder / default_out(src, rep.name, layer + suffix).name for src in sources]
    if len(set(outs)) < len(outs):
        raise InvguiError("two images would be written to the same file (same name in different folders); "
                         "rename one or run them separately")
    folder.mkdir(parents=True, exist_ok=True)
    check_destinations(outs)
    t0 = time.perf_counter()
    results, stopped = run_with_progress(prep, output.quiet)
    if len(results) == 1:                       # one forward pass for them all (a decoder): split per image
        (result,) = results
        results = per_image_results(results, len(sources))
        took = (f"{len(sources)} images in one forward pass of {result.metrics['seconds'] * 1000:.1f} ms "
                f"({result.metrics['images_per_second']:.0f} images/s)")
    else:
        rows = results[0].record.get("batch_rows", len(sources) * len(results[0].images))
        took = (f"{len(sources)} images optimised in batches of up to {rows} rows (images × restarts) in "
                f"{time.perf_counter() - t0:.1f} s")
    for src, img, res, out in zip(sources, prep.images, results, outs, strict=True):
        export_one(output, prep, res, out, image=img, source=src, **extra)
        print(f"{src}: {summary(res)}" + (f" ({res.message})" if res.message else ""))
    print(f"{took}; wrote them to {folder}/")
    warned = [Path(src).name for src, res in zip(sources, results, strict=True) if res.record.get("warnings")]
    if warned:
        print(f"WARNING: {len(warned)} of {len(sources)} runs failed quietly ({', '.join(warned[:5])}"
              f"{', …' if len(warned) > 5 else ''}): see their lines above")
    return exit_code(stopped)
