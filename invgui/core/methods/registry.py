"""The reconstruction methods invgui offers, one :class:`~.base.Method` each.  Everything outside
the methods asks this table — the command line's choices, the window's chooser and pages, the
session reader, the run lines and captions, sweeps and batching — instead of comparing names.

Adding a method: write ``methods/NAME.py`` with ``run_request(prep, should_stop, **options)``
yielding events (``Step``s, ``Status``es, a final ``Result`` per image) and, when it reads more
than a layer at a side (a decoder, a code space), ``prepare_request(prep, features)``; put its
parameters in a pure-data module if it has new ones, say how its results read (:mod:`.captions`)
if not as optimisation's, and register it below.  Nothing outside ``core/methods`` changes: the
command line, the window, sweeps, evaluation and sessions make its requests with
:meth:`Method.request` and ask it what it does (tests/core/test_methods_registry.py adds one).
Pure data: importing this module imports no torch (the methods are imported when a request of theirs first runs).
"""

from __future__ import annotations

from .base import DECODER_PAGE, DEFAULT_METHOD, METHODS, Method, method, register
from .captions import DECODED, DECODED_THEN_OPTIMISED, OPTIMISED
from .optimize_params import PRESETS, TERMS, OptimizeParams

_OPTIMISED = ("start_representation_error", "representation_error", "iterations", "seconds",
              "iterations_per_second")

OPTIMIZE = register(Method(
    "optimize", "Optimisation (Mahendran & Vedaldi)", "optimisation", "invgui.core.methods.optimize:run_request",
    preparer="invgui.core.methods.optimize:prepare_request", caption=OPTIMISED,
    params_cls=OptimizeParams, presets=PRESETS, optimises=True, terms=TERMS, metric_keys=_OPTIMISED,
    batchable=True, help="gradient descent from noise on the feature loss and the image priors (default)"))
DECODER = register(Method(
    "decoder", "Decoder (Dosovitskiy & Brox)", "decoder", "invgui.core.methods.decoder.run:run_request",
    preparer="invgui.core.methods.decoder.run:prepare_request", caption=DECODED, page=DECODER_PAGE,
    uses_decoder=True, metric_keys=("representation_error", "seconds"), record_keys=("decoder",),
    help="one forward pass of a trained up-convolutional decoder"))
HYBRID = register(Method(
    "hybrid", "Hybrid (decoder, then optimisation)", "hybrid", "invgui.core.methods.hybrid:run_request",
    preparer="invgui.core.methods.hybrid:prepare_request", caption=DECODED_THEN_OPTIMISED,
    params_cls=OptimizeParams, presets=PRESETS, uses_decoder=True, optimises=True, terms=TERMS,
    metric_keys=_OPTIMISED, record_keys=("decoder",),
    help="the decoder's reconstruction starts the optimisation; restarts add small noise to it"))
PROBE = register(Method(
    "probe", "Probe (manipulated features, decoded)", "probe", "invgui.core.methods.probe:run_request",
    preparer="invgui.core.methods.decoder.run:prepare_request", caption=DECODED,
    params_cls=OptimizeParams, presets=PRESETS, uses_decoder=True, in_window=False, one_image=True,
    needs_probe=True, help="manipulate Φ0 and reconstruct every variant with a decoder (and optimisation)"))

assert DEFAULT_METHOD in METHODS


def window_methods() -> list[Method]:
    """The methods the window's chooser, `invgui invert --method` and sweeps offer, in order."""
    return [m for m in METHODS.values() if m.in_window]


def names(in_window: bool = True) -> list[str]:
    return [m.name for m in METHODS.values() if m.in_window or not in_window]


__all__ = ["METHODS", "Method", "method", "OPTIMIZE", "DECODER", "HYBRID", "PROBE", "window_methods", "names",
           "DEFAULT_METHOD"]
