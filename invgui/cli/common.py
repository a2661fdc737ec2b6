"""What the commands share: the model and output flags, their conversion into the request and
export options the commands compute with (the argparse ``Namespace`` is read once, by each
command's ``run``, and by the ``of(args)`` converters here — no helper takes it), and the lines
every command prints.

Imported by ``build_parser`` (``--help``): pure at import — no torch, numpy or Qt.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_IMAGE = "sample:chelsea"


# -- the shared flags -----------------------------------------------------------------------------

def add_model_args(p: argparse.ArgumentParser, *, positional: bool = False, default: str | None = "") -> None:
    """--model (or MODEL), --weights, --random-weights, --trust-torchscript, --rep-param."""
    from ..core import catalog as R  # the names without torch: --help and argument errors stay fast

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


def add_fit_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fit", action="store_true", help="use all of a non-square image, padded to a square "
                   "with grey bars (default: its centre square, as the papers do; the record says which)")


def add_device_arg(p: argparse.ArgumentParser, more: str = "") -> None:
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)" + more)


def add_quiet_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


# -- the flags, converted once --------------------------------------------------------------------

@dataclass(frozen=True)
class Model:
    """The representation the model flags name."""

    name: str                         # "" = the default representation
    weights: str | None = None
    random_weights: bool = False
    rep_params: tuple[tuple[str, Any], ...] = ()
    trust_torchscript: bool = False

    @classmethod
    def of(cls, args: argparse.Namespace) -> Model:
        from ..core import representations as R
        from ..core.request import freeze_params

        return cls(args.model or "", args.weights, args.random_weights, freeze_params(R.parse_params(args.rep_param)),
                   bool(getattr(args, "trust_torchscript", False)))

    def build(self, **changes: Any):
        """The representation (``changes``: other ``weights`` / ``random_weights``)."""
        from ..core import representations as R

        m = dataclasses.replace(self, **changes)
        return R.get(m.name or R.DEFAULT, weights=m.weights, random_weights=m.random_weights,
                     params=dict(m.rep_params) or None, trust_torchscript=m.trust_torchscript)


def template(args: argparse.Namespace):
    """The request the flags fix whatever its method (model, layer, images, weights, device,
    framing): the template a method's ``Method.request`` makes the request from."""
    from ..core.request import RunRequest

    model = Model.of(args)
    images = args.image if isinstance(args.image, list) else [args.image]
    return RunRequest(model=model.name, layer=args.layer, images=tuple(images), rep_params=model.rep_params,
                      weights=model.weights, random_weights=model.random_weights, device=args.device,
                      trust_torchscript=model.trust_torchscript,
                      framing="fit" if getattr(args, "fit", False) else "crop")


@dataclass(frozen=True)
class Output:
    """Where and how a command writes its results."""

    out: str | None = None            # --out (a file, or a folder for several images)
    metrics: str | None = None        # --metrics: the JSON record (default beside --out)
    tiff: bool = False                # --tiff: also a 16-bit TIFF
    quiet: bool = False               # --quiet: no progress bar
    command: str = ""                 # the command line, for the record

    @classmethod
    def of(cls, args: argparse.Namespace) -> Output:
        return cls(out=args.out, metrics=getattr(args, "metrics", None), tiff=bool(getattr(args, "tiff", False)),
                   quiet=bool(getattr(args, "quiet", False)), command=" ".join(["invgui"] + sys.argv[1:]))


# -- what every command says and checks -----------------------------------------------------------

def pick_device(name: str) -> str:
    from ..core.device import resolve_device

    return resolve_device(name)


def default_out(image: str, model: str, layer: str) -> Path:
    stem = Path(image.split(":", 1)[1] if image.startswith("sample:") else image).stem
    return Path(re.sub(r"[^\w.-]+", "_", f"{stem}_{model}_{layer}") + ".png")


def check_destinations(paths) -> None:
    """Every file a command will write can be written — checked before anything is computed."""
    from ..core.files import check_writable

    for p in paths:
        check_writable(p)


def tell_notes(prep) -> None:
    """What prepare chose for the user (another layer's shipped decoder, …), on stderr."""
    for note in prep.notes:
        print(f"note: {note}", file=sys.stderr)


def skip(e: Exception) -> None:
    print(f"skipping {e}", file=sys.stderr)


def summary(result) -> str:
    from ..core.results import summary as told

    return told(result, "line")


def say_warnings(result) -> None:
    """The last line, when the run failed quietly (core.results.assess): never mistaken for a result."""
    from ..core.results import warnings

    said = warnings(result)
    if said:
        print(f"WARNING: this run failed quietly — {'; '.join(said)}; see 'When a run fails quietly' in docs/window.md")


def exit_code(stopped: bool) -> int:
    """130 (the shell's code for Ctrl-C) when a signal stopped the run, whose result was written."""
    if stopped:
        print("invgui: interrupted; the result reached so far was written (marked stopped)", file=sys.stderr)
        return 130
    return 0


def run_with_progress(prep, quiet: bool = False) -> tuple[list, bool]:
    """Run a prepared request, with a progress bar where it reports iterations (the first
    image's): its Results, and whether a signal stopped it.

    The first Ctrl-C (or SIGTERM) stops the run as the window's Stop does: the method ends after
    the current iteration with a result marked stopped, which the caller writes; a second one
    quits at once without writing anything."""
    from tqdm import tqdm

    from ..core.events import Result, Status, Step
    from ..core.request import run_prepared

    results, bar = [], None
    n = len(prep.images)
    desc = f"{prep.rep.name} {prep.layer}" + (f", {n} images" if n > 1 else "")
    stop = StopOnSignal()
    try:
        with stop:
            for ev in run_prepared(prep, should_stop=stop):
                if isinstance(ev, Status) and not quiet:
                    print(ev.message, file=sys.stderr)
                elif isinstance(ev, Step) and ev.item == 0:
                    if bar is None and not quiet:
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
    return results, stop.requested


class StopOnSignal:
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

    def __enter__(self) -> StopOnSignal:
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
