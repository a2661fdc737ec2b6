"""Inversion by optimisation (Mahendran & Vedaldi 2015/2016).

Find an image x minimising

    C · ‖Φ(x) − Φ0‖² / ‖Φ0‖²  +  λα · mean |u|^α  +  λV · mean ((∂x u)² + (∂y u)²)^(β/2)

by momentum gradient descent from noise, where ``u`` is the image in **σ units**: the
optimised variable is ``u`` and the image fed to Φ is ``x = mean + σ·u/255`` (RGB in
[0, 1]).  σ is the typical RMS deviation of a natural image from the mean grey in 0–255
units, so ``|u| ≈ 2`` is the edge of the displayable range; this "σ normalisation" makes the
regularisers and the learning rate independent of each model's input scaling, and the
start image is noise of natural-image norm (RMS ``init_scale`` in σ units).

``run`` is a generator of :mod:`invgui.core.events`; see design.md §2 and §3.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from .. import metrics
from ..events import Event, Result, Status, Step
from ..images import resize_center_crop, to_uint8
from ..params import Presets, param, to_dict, validate
from ..regularizers import alpha_norm, tv_beta
from ..representations import Representation, RepresentationError

TERMS = ("total", "feature", "alpha", "tv")


@dataclass(frozen=True)
class OptimizeParams:
    """Parameters of the optimisation method (one flag / one dock widget each)."""

    iters: int = param(200, label="Iterations", min=1, max=100000, step=50, group="Schedule",
                       tooltip="Number of gradient steps.")
    lr: float = param(0.004, label="Learning rate", min=0.0, max=10.0, group="Schedule",
                      tooltip="Step size of momentum SGD per pixel value (the gradient of the mean-based "
                              "objective is scaled by the number of values, so one rate fits every "
                              "input size). M&V's code uses 0.004.")
    momentum: float = param(0.9, label="Momentum", min=0.0, max=0.999, step=0.05, group="Schedule",
                            tooltip="Momentum of gradient descent (M&V use 0.9).")
    lr_milestones: tuple[float, ...] = param((0.6, 0.85), label="LR milestones", min=0.0, max=1.0,
                                             group="Schedule",
                                             tooltip="Fractions of the run at which the learning rate is "
                                                     "multiplied by the decay (a step schedule).")
    lr_decay: float = param(0.1, label="LR decay", min=0.0, max=1.0, step=0.1, group="Schedule",
                            tooltip="Factor applied to the learning rate at each milestone.")
    reset_momentum: bool = param(True, label="Reset momentum at milestones", group="Schedule",
                                 tooltip="Zero the momentum buffer whenever the learning rate changes "
                                         "(as in deep-goggle).")
    feature_weight: float = param(1.0, label="Feature weight C", min=0.0, max=1e6, group="Loss",
                                  tooltip="Weight C of the normalised feature loss C·‖Φ(x)−Φ0‖²/‖Φ0‖².")
    alpha: float = param(6.0, label="α (norm exponent)", min=1.0, max=20.0, step=1.0, group="Loss",
                         tooltip="Exponent of the α-norm prior; large α keeps pixels in range (M&V: 6).")
    alpha_weight: float = param(1e-4, label="λα", min=0.0, max=1e6, group="Loss",
                                tooltip="Weight of the α-norm prior mean|u|^α (u: image in σ units).")
    beta: float = param(2.0, label="β (TV exponent)", min=0.5, max=4.0, step=0.5, group="Loss",
                        tooltip="Exponent of the TV^β prior; β > 1 removes spikes (M&V: 2).")
    tv_weight: float = param(10.0, label="λV", min=0.0, max=1e6, group="Loss",
                             tooltip="Weight of the TV^β prior; deeper layers want more (M&V: 1/10/100 "
                                     "for early/middle/deep layers).")
    sigma: float = param(64.0, label="σ (natural-image RMS)", min=1.0, max=255.0, group="Loss",
                         tooltip="RMS deviation of natural images from mean grey, 0–255 units; the image "
                                 "is optimised in units of σ.")
    init_scale: float = param(1.0, label="Start noise RMS", min=0.0, max=10.0, step=0.1, group="Start",
                              tooltip="RMS of the Gaussian start noise in σ units (1 = natural-image norm).")
    seed: int = param(0, label="Seed", min=0, max=2**31 - 1, group="Start",
                      tooltip="Seed of the start noise; the same seed gives the same result on CPU.")
    size: int = param(0, label="Input size", min=0, max=4096, step=16, group="Input",
                      special="model default",
                      tooltip="Side of the square input in pixels (0 = the model's own, e.g. 224).")
    preview_every: int = param(10, label="Preview every", min=1, max=10000, group="Display",
                               tooltip="Send a preview image (and read losses back) every k iterations.")


PRESETS: Presets[OptimizeParams] = Presets(OptimizeParams)
PRESETS.add("default", OptimizeParams())


def lr_at(p: OptimizeParams, i: int) -> float:
    """Learning rate for 0-based iteration ``i`` under the step schedule."""
    drops = sum(1 for m in p.lr_milestones if i >= round(m * p.iters))
    return p.lr * (p.lr_decay ** drops)


class _Images:
    """Maps between σ-unit variables and RGB [0, 1] images for one representation."""

    def __init__(self, rep: Representation, sigma: float, device):
        self.mean = torch.tensor(rep.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.scale = sigma / 255.0

    def to_rgb(self, u: torch.Tensor) -> torch.Tensor:
        return self.mean + self.scale * u


def run(rep: Representation, image: np.ndarray, layer: str | None = None,
        params: OptimizeParams = OptimizeParams(), *, device: str | torch.device = "cpu",
        should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
    """Invert ``rep`` at ``layer`` for ``image`` (H×W×3 float in [0, 1]).

    Yields a :class:`Step` per iteration (losses of every term; a preview every
    ``preview_every`` steps) and finally a :class:`Result`.  ``should_stop`` is polled each
    iteration: when it returns True the run ends early with ``Result.stopped``.  ``close()``
    on the generator cancels without a result.
    """
    problems = validate(params)
    if problems:
        raise ValueError("invalid parameters: " + "; ".join(problems))
    if not rep.differentiable:
        raise RepresentationError(f"{rep.name} is not differentiable, so it cannot be inverted by "
                                  "optimisation; use the decoder method")
    device = torch.device(device)
    layer = rep.resolve_layer(layer)
    size = params.size or rep.input_size
    p = params
    yield Status(f"preparing {rep.name} {layer} at {size}×{size} on {device}")

    rep.to(device)
    target = resize_center_crop(image, size)
    x0 = torch.from_numpy(target).permute(2, 0, 1)[None].to(device)
    with torch.no_grad():
        phi0 = rep.features(x0, layer)
    norm0 = phi0.square().sum()
    if not torch.isfinite(norm0) or norm0.item() == 0:
        raise RepresentationError(f"the target's features at {rep.name} {layer} are all zero (or not finite); "
                                  "there is nothing to invert: pick another layer or image")

    gen = torch.Generator().manual_seed(p.seed)
    u0 = torch.randn(1, 3, size, size, generator=gen)
    u0 = u0 / u0.square().mean().sqrt() * p.init_scale
    u = u0.to(device).clone().requires_grad_(True)
    conv = _Images(rep, p.sigma, device)
    # Per-pixel learning rate: the objective is a mean over pixels, so scale the step by their count.
    lr_scale = float(u[0].numel())
    opt = torch.optim.SGD([u], lr=p.lr * lr_scale, momentum=p.momentum)

    def step_fn() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        with torch.enable_grad():             # grad mode is thread-local: set it here, not by the caller
            phi = rep.features(conv.to_rgb(u), layer)
            feat = p.feature_weight * (phi - phi0).square().flatten(1).sum(1) / norm0
            ra = p.alpha_weight * alpha_norm(u, p.alpha)
            rv = p.tv_weight * tv_beta(u, p.beta)
            total = feat + ra + rv
            total.sum().backward()
        opt.step()
        return torch.stack([total.sum(), feat.sum(), ra.sum(), rv.sum()]).detach()

    history: dict[str, list[float]] = {k: [] for k in TERMS}
    pending: list[torch.Tensor] = []
    last_good = u.detach().clone()
    stopped, message = False, ""
    lr_now = p.lr
    t_start = time.perf_counter()
    for i in range(p.iters):
        lr = lr_at(p, i)
        if lr != lr_now:
            for g in opt.param_groups:
                g["lr"] = lr * lr_scale
            if p.reset_momentum:
                opt.state.clear()
            lr_now = lr
        pending.append(step_fn())
        last = i + 1 == p.iters
        user_stop = should_stop is not None and should_stop()
        if (i + 1) % p.preview_every and not last and not user_stop:
            continue
        # Flush: the only host sync, once every `preview_every` iterations.
        values = torch.stack(pending).cpu()
        pending.clear()
        finite = torch.isfinite(values)
        n_ok = len(values) if bool(finite.all()) else int((~finite.all(1)).nonzero()[0])
        diverged = n_ok < len(values)
        if diverged:
            bad_row = values[n_ok]
            col = next(c for c in (1, 2, 3, 0) if not torch.isfinite(bad_row[c]))
            stopped = True
            message = (f"the run diverged: the {TERMS[col]} loss became {bad_row[col].item()} at iteration "
                       f"{len(history['total']) + n_ok + 1}; lower the learning rate (now {p.lr:g}). "
                       "The last good image is kept.")
            preview = None
        else:
            last_good = u.detach().clone()
            preview = to_uint8(_to_numpy(conv.to_rgb(last_good))[0])
        elapsed = time.perf_counter() - t_start
        for k, row_vals in enumerate(values[:n_ok].tolist()):
            for name, v in zip(TERMS, row_vals):
                history[name].append(v)
            n = len(history["total"])
            yield Step(i=n, total=p.iters, losses=dict(zip(TERMS, row_vals)), lr=lr_at(p, n - 1),
                       elapsed=elapsed, preview=preview if k == n_ok - 1 else None)
        if diverged:
            break
        if user_stop and not last:
            stopped, message = True, f"stopped by the user after {i + 1} of {p.iters} iterations"
            break
    elapsed = time.perf_counter() - t_start

    images = np.clip(_to_numpy(conv.to_rgb(last_good)), 0.0, 1.0)
    with torch.no_grad():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).to(device)
        rep_err = metrics.representation_error(rep.features(x, layer), phi0)
        start_err = metrics.representation_error(rep.features(conv.to_rgb(u0.to(device)).clamp(0, 1), layer), phi0)
    done = len(history["total"])
    m = {
        "representation_error": float(rep_err[0]),
        "representation_error_sq": float(rep_err[0]) ** 2,
        "start_representation_error": float(start_err[0]),
        "psnr": metrics.psnr(images[0], target),
        "ssim": metrics.ssim(images[0], target),
        "final_loss": history["total"][-1] if done else float("nan"),
        "iterations": done,
        "seconds": elapsed,
        "iterations_per_second": done / elapsed if elapsed > 0 else float("nan"),
    }
    record = {
        "method": "optimize",
        "representation": rep.name,
        "weights": rep.weights_info,
        "weights_file": rep.weights_file,
        "layer": layer,
        "layer_shape": list(phi0.shape[1:]),
        "input_size": size,
        "device": str(device),
        "params": to_dict(p),
    }
    yield Result(images=images, target=target, history=history, metrics=m, record=record,
                 stopped=stopped, message=message)


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).float().cpu().numpy()


def run_named(model: str, image: np.ndarray, layer: str | None = None,
              params: OptimizeParams = OptimizeParams(), *, weights: str | None = None,
              random_weights: bool = False, device: str | torch.device = "cpu",
              should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
    """Like :func:`run`, building representation ``model`` first (in the caller's thread)."""
    from .. import representations

    yield Status(f"loading {model}")
    rep = representations.get(model, weights=weights, random_weights=random_weights)
    yield from run(rep, image, layer, params, device=device, should_stop=should_stop)
