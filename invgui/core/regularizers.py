"""Natural-image regularisers of Mahendran & Vedaldi, on images in σ units (N×C×H×W)."""

from __future__ import annotations

import torch


def alpha_norm(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """Mean over pixels and channels of ``|u|^α``, one value per batch item (the α-norm prior)."""
    if alpha % 2 == 0:          # even α (M&V's 6): (u²)^(α/2) avoids abs and is ~3× faster on CPU
        return u.square().pow(alpha / 2).flatten(1).mean(1)
    return u.abs().pow(alpha).flatten(1).mean(1)


def tv_beta(u: torch.Tensor, beta: float, eps: float = 1e-8) -> torch.Tensor:
    """Mean of ``((∂x u)² + (∂y u)²)^(β/2)`` over pixels and channels, one value per batch item.

    Finite differences run along the two *spatial* axes (a TV that differences over the colour
    axis instead gives grey images).  ``eps`` keeps the gradient finite for β < 2 on flat regions.
    """
    dx = u[:, :, :-1, 1:] - u[:, :, :-1, :-1]
    dy = u[:, :, 1:, :-1] - u[:, :, :-1, :-1]
    sq = dx * dx + dy * dy
    val = sq if beta == 2 else (sq + eps).pow(beta / 2)
    return val.flatten(1).mean(1)
