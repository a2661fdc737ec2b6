"""The ``invgui`` command: headless entry points built on ``invgui.core`` (and ``gui`` for the window).

    invgui                       open the main window
    invgui layers MODEL          print a representation's layer tree with output shapes
    invgui invert [IMAGE] ...    reconstruct headless, write PNG + JSON record
    invgui features IMAGE ...    write Φ0 at a layer (with metadata) for inversion from features alone
    invgui train-decoder ...     train an up-convolutional decoder (Dosovitskiy & Brox) on a folder
    invgui probe IMAGE ...       manipulate Φ0 (binarise, dropout, top-k, interpolate, random, neuron)
                                 and reconstruct it with a decoder (and optimisation)
    invgui evaluate ...          methods × layers × a folder of images, resumable and shardable
    invgui gui [--screenshot P]  open the main window (optionally: run, screenshot, exit)

One module a command, each with ``add_parser(sub)`` (its flags) and ``run(args)`` (which reads
the flags once, into the request and output options the rest computes with); the flags they
share and the lines they all print are in :mod:`.common`.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..core.errors import InvguiError
from . import evaluate, features, gui, invert, layers, probe, train_decoder

# In the order --help lists them.
COMMANDS = {m.NAME: m for m in (layers, invert, train_decoder, probe, features, evaluate, gui)}


def build_parser() -> argparse.ArgumentParser:
    """The whole command line.  It imports only pure-data modules (catalog, *_params), never
    torch: ``--help`` and argument errors answer in a fraction of a second (a test checks)."""
    parser = argparse.ArgumentParser(prog="invgui", description="See what an image representation keeps.")
    parser.add_argument("--version", action="version", version=f"invgui {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error "
                        "(allowed anywhere on the command line)")
    sub = parser.add_subparsers(dest="command")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


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
        return COMMANDS[args.command].run(args)
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


__all__ = ["COMMANDS", "build_parser", "main", "out_of_memory", "OUT_OF_MEMORY"]
