"""How each method's results are told: the command line's sentence, the window's result panel,
the status bar once a run has ended and the word in the reconstruction pane's title.  A method's
:class:`~.base.Method` holds one of these (``caption``); :mod:`invgui.core.results` says the parts
every method shares (PSNR/SSIM, sizes, warnings) and asks the method for the rest.

Pure: no torch, no numpy at import (the registry imports it for ``--help``).  A new method that
reads like optimisation needs nothing here; one that reads otherwise subclasses :class:`Caption`.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..events import Result

Metrics = Any       # invgui.core.results.Metrics (which imports the registry, which imports this)


def batch_note(result: Result) -> str:
    """" (batch of N)" when the result was computed with others in one batch (its time is the
    batch's), else ""."""
    n = result.record.get("batch")
    return f" (batch of {n})" if isinstance(n, int) and n > 1 else ""


def _speed(result: Result, m: Metrics) -> str:
    return f"{m.iterations} it in {m.seconds:.1f} s ({m.iterations_per_second:.1f} it/s)" + batch_note(result)


def _optimised_html(result: Result, m: Metrics, shape: bool) -> str:
    """The iterations and the settings of an optimisation (``shape``: with the priors' α and β)."""
    p, tv = result.record.get("params", {}), result.record.get("resolved", {}).get("tv_weight")
    priors = f"λV {tv}, α {p.get('alpha')}, β {p.get('beta')}" if shape else f"λV {tv}"
    return (f"{m.iterations} iterations in {m.seconds:.1f} s ({m.iterations_per_second:.1f} it/s)"
            f"{batch_note(result)}<br>"
            f"<small>{p.get('optimizer')} lr {p.get('lr')}, {priors}, seed {p.get('seed')}, "
            f"restarts {p.get('restarts')}</small>")


def decoder_stage(result: Result) -> float:
    """The hybrid's decoder-stage representation error (NaN when the record lacks it)."""
    v = (result.record.get("decoder_stage") or {}).get("representation_error")
    return float(v) if isinstance(v, (int, float)) else float("nan")


class Caption:
    """Optimisation from noise: the representation error from its start to its end (and the
    activation, when it maximises), the iterations and their speed, the settings."""

    def head(self, result: Result, m: Metrics, word: str, spread: bool) -> list[str]:
        """The command line's sentence, before the image metrics."""
        parts = [f"representation error {m.start_representation_error:.4f} -> "
                 f"{m.pm('representation_error', '.4f', spread)}"]
        if result.record.get("params", {}).get("objective", "invert") != "invert":
            parts.append(f"activation {m.pm('start_activation', '.4g')} -> {m.pm('activation', '.4g')}")
        return parts

    def cost(self, result: Result, m: Metrics) -> str:
        """The sentence's last part: what the run took."""
        return _speed(result, m)

    def html(self, result: Result, m: Metrics, word: str, where: str, image: str, spread: bool) -> str:
        """The window's result panel; ``where`` (the layer, bold) and ``image`` (the image metrics,
        one per line) are made by the caller."""
        return (f"{where}<br>representation error {m.start_representation_error:.3f} → "
                f"<b>{m.pm('representation_error', '.3f', spread)}</b><br>{image}"
                + _optimised_html(result, m, shape=True))

    def progress(self, result: Result, m: Metrics) -> str:
        """The status bar's words once the run has ended."""
        return f"{'stopped' if result.stopped else 'done'}: {m.iterations} it · {m.iterations_per_second:.1f} it/s"

    def state(self, result: Result, word: str) -> str:
        """The reconstruction pane's title word: how the run ended."""
        return "stopped" if result.stopped else "done"


class Decoded(Caption):
    """One forward pass of a decoder: the representation error of its reconstruction, the
    decoder, the milliseconds."""

    def head(self, result: Result, m: Metrics, word: str, spread: bool) -> list[str]:
        return [f"{word}: representation error of the reconstruction {m.representation_error:.4f}"]

    def cost(self, result: Result, m: Metrics) -> str:
        return f"one forward pass in {(m.seconds or 0.0) * 1000:.1f} ms"

    def html(self, result: Result, m: Metrics, word: str, where: str, image: str, spread: bool) -> str:
        rec = result.record
        meta = rec.get("decoder_meta", {})
        return (f"{where} — {word} ({escape(str(meta.get('architecture')))}, "
                f"{escape(Path(str(rec.get('decoder'))).name)})<br>"
                f"representation error of the reconstruction <b>{m.representation_error:.3f}</b><br>"
                f"{image}one forward pass: {(m.seconds or 0.0) * 1000:.1f} ms")

    def progress(self, result: Result, m: Metrics) -> str:
        return f"done: decoder in {(m.seconds or 0.0) * 1000:.1f} ms"

    def state(self, result: Result, word: str) -> str:
        return word


class DecodedThenOptimised(Caption):
    """A decoder's reconstruction, optimised: both stages' representation errors, the decoder, the
    optimisation's iterations and settings."""

    def head(self, result: Result, m: Metrics, word: str, spread: bool) -> list[str]:
        return [f"{word}: representation error {decoder_stage(result):.4f} (decoder) -> "
                f"{m.pm('representation_error', '.4f', spread)} (optimised)"]

    def html(self, result: Result, m: Metrics, word: str, where: str, image: str, spread: bool) -> str:
        rec = result.record
        stage = rec.get("decoder_stage") or {}
        nre = stage.get("normalised_reconstruction_error")
        colour = rec.get("resolved", {}).get("colour", "")
        where += (f" — {word}: decoder ({escape(Path(str(rec.get('decoder'))).name)}) then optimisation<br>"
                  f"<small>decoder stage: representation error {decoder_stage(result):.3f}"
                  + (f", normalised reconstruction error {nre:.3f}" if isinstance(nre, (int, float)) else "")
                  + (f"<br>colour: {escape(colour, quote=False)}" if colour else "")
                  + "</small>")
        return (f"{where}<br>representation error <b>{m.pm('representation_error', '.3f', spread)}</b><br>{image}"
                + _optimised_html(result, m, shape=False))


OPTIMISED = Caption()
DECODED = Decoded()
DECODED_THEN_OPTIMISED = DecodedThenOptimised()
