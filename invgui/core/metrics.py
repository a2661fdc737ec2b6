"""Metrics of design.md §5: representation error, PSNR, SSIM."""

from __future__ import annotations

import numpy as np
import torch


def representation_error(phi: torch.Tensor, phi0: torch.Tensor) -> torch.Tensor:
    """``‖Φ(x) − Φ0‖ / ‖Φ0‖`` per batch item (``phi0`` broadcasts over the batch)."""
    diff = (phi - phi0).flatten(1).norm(dim=1)
    return diff / phi0.flatten(1).norm(dim=1).clamp_min(1e-12)


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB of ``x`` against ``ref``, both H×W×3 in [0, 1]."""
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(ref, np.clip(x, 0, 1), data_range=1.0))


def ssim(x: np.ndarray, ref: np.ndarray) -> float:
    """SSIM of ``x`` against ``ref`` (H×W×3 in [0, 1]), Gaussian-weighted as in Wang et al."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(ref, np.clip(x, 0, 1), data_range=1.0, channel_axis=-1,
                                       gaussian_weights=True, sigma=1.5, use_sample_covariance=False))
