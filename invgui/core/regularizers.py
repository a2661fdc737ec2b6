"""Natural-image regularisers of Mahendran & Vedaldi, on images in σ units (N×C×H×W).

``alpha_norm`` and ``tv_beta`` are the readable definitions (autograd differentiates them).
``priors`` computes both with their analytic gradient in one pass: on a 2-core CPU the autograd
versions cost ~2 ms per 224×224 iteration (about 20 small operators with their graph), the fused
one about half of that, which matters next to a ~20 ms forward+backward of the network.  A test
checks that the two agree, and ``gradcheck`` checks the analytic gradient.
"""

from __future__ import annotations

import torch

TV_EPS = 1e-8


def alpha_norm(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """Mean over pixels and channels of ``|u|^α``, one value per batch item (the α-norm prior)."""
    if alpha % 2 == 0:          # even α (M&V's 6): (u²)^(α/2) avoids abs and is ~3× faster on CPU
        return u.square().pow(alpha / 2).flatten(1).mean(1)
    return u.abs().pow(alpha).flatten(1).mean(1)


def tv_beta(u: torch.Tensor, beta: float, eps: float = TV_EPS) -> torch.Tensor:
    """Mean of ``((∂x u)² + (∂y u)²)^(β/2)`` over pixels and channels, one value per batch item.

    Finite differences run along the two *spatial* axes (a TV that differences over the colour
    axis instead gives grey images).  ``eps`` keeps the gradient finite for β < 2 on flat regions.
    """
    dx = u[:, :, :-1, 1:] - u[:, :, :-1, :-1]
    dy = u[:, :, 1:, :-1] - u[:, :, :-1, :-1]
    sq = dx * dx + dy * dy
    val = sq if beta == 2 else (sq + eps).pow(beta / 2)
    return val.flatten(1).mean(1)


class _Priors(torch.autograd.Function):
    """``wα·alpha_norm(u, α) + wV·tv_beta(u, β)`` per batch item, gradient computed in forward."""

    @staticmethod
    def forward(ctx, u, alpha, w_alpha, beta, w_tv):
        n_px = u[0].numel()
        n_tv = u.shape[1] * (u.shape[2] - 1) * (u.shape[3] - 1)
        grad = torch.zeros_like(u)
        ra = rv = u.new_zeros(u.shape[0])
        if w_alpha:
            if alpha % 2 == 0:
                sq = u * u
                p = sq.pow(alpha / 2 - 1)                        # |u|^(α−2)
                ra = w_alpha * (p * sq).flatten(1).mean(1)
                grad.add_(p * u, alpha=w_alpha * alpha / n_px)    # α·u·|u|^(α−2)
            else:
                a = u.abs()
                ra = w_alpha * a.pow(alpha).flatten(1).mean(1)
                grad.add_(a.pow(alpha - 1) * torch.sign(u), alpha=w_alpha * alpha / n_px)
        if w_tv:
            base = u[:, :, :-1, :-1]
            dx = u[:, :, :-1, 1:] - base
            dy = u[:, :, 1:, :-1] - base
            sq = dx * dx + dy * dy
            if beta == 2:
                rv = w_tv * sq.flatten(1).mean(1)
                k = 2.0 * w_tv / n_tv
                gx, gy = dx.mul_(k), dy.mul_(k)
            else:
                s = sq.add_(TV_EPS)
                rv = w_tv * s.pow(beta / 2).flatten(1).mean(1)
                w = s.pow_(beta / 2 - 1).mul_(beta * w_tv / n_tv)    # β·s^(β/2−1)·wV/n
                gx, gy = dx.mul_(w), dy.mul_(w)
            grad[:, :, :-1, 1:] += gx
            grad[:, :, 1:, :-1] += gy
            grad[:, :, :-1, :-1] -= gx + gy
        ctx.save_for_backward(grad)
        ra, rv = ra.detach(), rv.detach()
        ctx.mark_non_differentiable(ra, rv)
        return ra + rv, ra, rv

    @staticmethod
    def backward(ctx, g_total, _g_ra, _g_rv):
        (grad,) = ctx.saved_tensors
        return grad * g_total.view(-1, 1, 1, 1), None, None, None, None


def priors(u: torch.Tensor, alpha: float, w_alpha: float, beta: float, w_tv: float
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, α term, TV term) per batch item; only ``total`` carries a gradient."""
    return _Priors.apply(u, alpha, w_alpha, beta, w_tv)
