"""The measures of docs/evaluation.md ("The measures"): representation error, PSNR, SSIM."""

from __future__ import annotations

import numpy as np
import torch

from .errors import InvguiError


def representation_error(phi: torch.Tensor, phi0: torch.Tensor) -> torch.Tensor:
    """``‖Φ(x) − Φ0‖ / ‖Φ0‖`` per batch item (``phi0`` broadcasts over the batch)."""
    diff = (phi - phi0).flatten(1).norm(dim=1)
    return diff / phi0.flatten(1).norm(dim=1).clamp_min(1e-12)


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB of ``x`` against ``ref``, both H×W×3 in [0, 1] (inf when they are equal).

    Computed here, not with ``skimage.metrics.peak_signal_noise_ratio``: its module imports
    ``scipy.stats`` (0.85 s of a 5 s cold start, measured) for a one-line formula; a test checks
    both agree."""
    mse = np.mean((ref.astype(np.float64) - np.clip(x, 0, 1).astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


def ssim(x: np.ndarray, ref: np.ndarray) -> float:
    """SSIM of ``x`` against ``ref`` (H×W×3 in [0, 1]), Gaussian-weighted as in Wang et al."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(ref, np.clip(x, 0, 1), data_range=1.0, channel_axis=-1,
                                       gaussian_weights=True, sigma=1.5, use_sample_covariance=False))


def mean_pairwise_distance(images: list[np.ndarray]) -> float:
    """N of paper 001: mean Euclidean distance between pairs of images (same size, [0, 1] RGB)."""
    if len(images) < 2:
        raise InvguiError("the evaluation set needs at least two images")
    return mean_pairwise_distance_rows(np.stack([im.reshape(-1).astype(np.float32) for im in images]))


def mean_pairwise_distance_rows(flat: np.ndarray, block: int = 64) -> float:
    """The mean distance between every pair of rows of ``flat`` (n × d), in float64 a block of rows
    at a time: the images stay float32 (exact: they are float32 to begin with) and no n × n or
    float64 n × d array is made — 1,000 images at 224 px hold 0.6 GB instead of 1.2 + 8 MB·n."""
    n = len(flat)
    sq = np.einsum("ij,ij->i", flat, flat, dtype=np.float64)
    total = 0.0
    for i in range(0, n, block):
        a = flat[i:i + block].astype(np.float64)
        for j in range(i, n, block):
            b = a if j == i else flat[j:j + block].astype(np.float64)
            d2 = np.maximum(sq[i:i + block, None] + sq[None, j:j + block] - 2 * a @ b.T, 0.0)
            if j == i:
                d2 = d2[np.triu_indices(len(a), k=1)]
            total += float(np.sqrt(d2).sum())
    return total / (n * (n - 1) / 2)


def normalised_reconstruction_error(x: np.ndarray, ref: np.ndarray, n: float) -> float:
    """Paper 001's ‖x − x̂‖₂ / N, images in [0, 1] RGB at input resolution."""
    return float(np.linalg.norm((np.clip(x, 0, 1) - ref).astype(np.float64)) / n)


def eval_set_distance(spec: str, size: int, on_skip=None) -> float:
    """N of paper 001 over a folder of images (or ``"samples"``: the bundled photos), compared at
    ``size``×``size``.  Unreadable files are skipped (``on_skip(error)`` is told of each)."""
    from pathlib import Path

    from .images import SAMPLE_SET, ImageError, load_image, resize_center_crop

    if spec == "samples":
        sources = [f"sample:{n}" for n in SAMPLE_SET]
    else:
        folder = Path(spec)
        if not folder.is_dir():
            raise ImageError(f"{folder}: the evaluation set must be a folder of images (or 'samples')")
        sources = sorted(str(f) for f in folder.rglob("*")
                         if f.suffix.lower() in {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
    images = []
    for src in sources:
        try:
            images.append(resize_center_crop(load_image(src), size))
        except ImageError as e:
            if on_skip is not None:
                on_skip(e)
    if len(images) < 2:
        raise ImageError(f"{spec}: the evaluation set needs at least two readable images")
    return mean_pairwise_distance(images)


def at_eval_size(images, originals, eval_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(reconstruction, original) pairs at ``eval_size``: each original centre-cropped and resized
    to it as every method's input is, each reconstruction resized to it (upsampled when the
    method worked smaller, as paper 001 compares at the input resolution; unchanged when equal)."""
    from .images import resize_center_crop

    pairs = []
    for img, orig in zip(images, originals, strict=True):
        rec = img if img.shape[0] == eval_size else resize_center_crop(np.clip(img, 0, 1), eval_size)
        pairs.append((rec, resize_center_crop(orig, eval_size)))
    return pairs
