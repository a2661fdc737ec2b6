"""How a result is told in words — one place for the command line, the run list and the
comparison view's captions, so the same run never reads differently in two of them.

``summary(result, style)``: ``"line"`` is the command line's full sentence (mean ± std over
restarts), ``"short"`` the run list's second line, ``"caption"`` the text under a comparison cell
(with the normalised reconstruction error ``nre`` when known).
"""

from __future__ import annotations

from .events import Result

STYLES = ("line", "short", "caption")


def format_seconds(sec: float) -> str:
    return f"{sec * 1000:.0f} ms" if sec < 1 else f"{sec:.1f} s"


def summary(result: Result, style: str = "line", nre: float | None = None) -> str:
    if style not in STYLES:
        raise ValueError(f"summary style {style!r}: one of {', '.join(STYLES)}")
    m = result.metrics
    if style == "short":
        bits = [f"rep. error {m['representation_error']:.3f}"] if "representation_error" in m else []
        if "psnr" in m:
            bits.append(f"PSNR {m['psnr']:.1f}")
        if "seconds" in m:
            bits.append(format_seconds(m["seconds"]))
        return ", ".join(bits)
    if style == "caption":
        parts = [f"rep {m['representation_error']:.3f}"] if "representation_error" in m else []
        if nre is not None:
            parts.append(f"nre {nre:.3f}")
        if "psnr" in m:
            parts.append(f"{m['psnr']:.1f} dB / {m.get('ssim', float('nan')):.2f}")
        if "seconds" in m:
            parts.append(format_seconds(m["seconds"]))
        return " · ".join(parts)
    return _line(result)


def _line(result: Result) -> str:
    """One line of the metrics that matter, mean ± std over restarts where there are several."""
    m = result.metrics

    def pm(key: str, fmt: str) -> str:
        s = format(m[key], fmt)
        return s + (f" ± {format(m[key + '_std'], fmt)}" if len(result.images) > 1 and key + "_std" in m else "")

    decoder = result.record.get("method") == "decoder"
    if decoder:
        parts = [f"decoder: representation error of the reconstruction {m['representation_error']:.4f}"]
    else:
        parts = [f"representation error {m['start_representation_error']:.4f} -> "
                 f"{pm('representation_error', '.4f')}"]
        if result.record.get("params", {}).get("objective", "invert") != "invert":
            parts.append(f"activation {m['start_activation']:.4g} -> {m['activation']:.4g}")
    if "psnr" in m:
        parts.append(f"PSNR {pm('psnr', '.2f')} dB; SSIM {pm('ssim', '.3f')}")
    if "normalised_reconstruction_error" in m:
        parts.append(f"normalised reconstruction error {pm('normalised_reconstruction_error', '.4f')}")
    if decoder:
        parts.append(f"one forward pass in {m['seconds'] * 1000:.1f} ms")
    else:
        parts.append(f"{m['iterations']} it in {m['seconds']:.1f} s ({m['iterations_per_second']:.1f} it/s)")
    return "; ".join(parts)
