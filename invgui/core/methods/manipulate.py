"""Feature-space probes of paper 001 §5.3–5.5: manipulate Φ0, then reconstruct.

Every function takes and returns feature tensors without a batch dimension (C×H×W or C) and
never changes its input.  The manipulated features can be reconstructed by a decoder or used as
the optimisation method's target, so both methods can be compared on them (``probe_features``
returns labelled feature sets; ``invgui probe`` and the window build image strips from them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import torch

from ..errors import InvguiError
from ..layout import Layout, plain
from .probe_params import PROBES  # noqa: F401  (the names live without torch)


def _renorm(t: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    n = t.norm()
    return t * (norm / n) if n > 0 else t


def binarise(phi: torch.Tensor) -> torch.Tensor:
    """Keep the signs, give every non-zero entry the same magnitude so the norm is unchanged."""
    nz = int((phi != 0).sum())
    if nz == 0:
        return phi.clone()
    return torch.sign(phi) * (phi.norm() / math.sqrt(nz))


def dropout(phi: torch.Tensor, fraction: float = 0.5, mode: str = "random", seed: int = 0) -> torch.Tensor:
    """Zero ``fraction`` of the entries — at random, or the smallest non-zero ones by magnitude
    (``mode="smallest"``) — and rescale so the norm is unchanged."""
    flat = phi.flatten().clone()
    if mode == "random":
        g = torch.Generator().manual_seed(seed)
        drop = torch.randperm(flat.numel(), generator=g)[:round(fraction * flat.numel())].to(flat.device)
    elif mode == "smallest":
        nz = (flat != 0).nonzero().flatten()
        order = flat[nz].abs().argsort()
        drop = nz[order[:round(fraction * len(nz))]]
    else:
        raise InvguiError(f"dropout mode {mode!r}: use 'random' or 'smallest'")
    flat[drop] = 0
    return _renorm(flat, phi.norm()).view_as(phi)


def top_k(phi: torch.Tensor, k: int = 5, keep: bool = True) -> torch.Tensor:
    """Keep only the k largest activations (``keep``) or zero them (``keep=False``)."""
    flat = phi.flatten()
    k = min(k, flat.numel())
    idx = flat.topk(k).indices
    if keep:
        out = torch.zeros_like(flat)
        out[idx] = flat[idx]
    else:
        out = flat.clone()
        out[idx] = 0
    return out.view_as(phi)


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int = 8) -> list[torch.Tensor]:
    """``steps`` feature vectors from ``a`` to ``b`` (both included)."""
    if a.shape != b.shape:
        raise InvguiError(f"cannot interpolate features of shapes {tuple(a.shape)} and {tuple(b.shape)}")
    steps = max(2, steps)
    return [torch.lerp(a, b, float(t)) for t in torch.linspace(0, 1, steps)]


def neuron(layout: Layout | tuple[int, ...], channel: int, position: tuple[int, int] | None = None,
           value: float = 1.0) -> torch.Tensor:
    """All zeros but one entry: ``channel`` at map cell ``position`` (row, column; default: the
    centre) = ``value``, in the layer's own layout (a transformer's patch token, a channels-last
    cell)."""
    lay = layout if isinstance(layout, Layout) else plain(tuple(layout))
    out = torch.zeros(lay.shape)
    if not 0 <= channel < lay.channels:
        raise InvguiError(f"channel {channel} is out of range 0…{lay.channels - 1}")
    if lay.grid is None:
        if lay.kind != "vector":
            raise InvguiError(f"this layer's output ({lay.text()}) has no channels invgui can read")
        out[channel] = value
        return out
    h, w = lay.grid
    y, x = position if position is not None else (h // 2, w // 2)
    if not (0 <= y < h and 0 <= x < w):
        raise InvguiError(f"position ({y}, {x}) is outside the {h}×{w} feature map")
    lay.spatial(out[None])[0, channel, y, x] = value      # a view: the write lands in the layer's layout
    return out


@dataclass
class FeatureStats:
    """Per-dimension statistics of features over a set of images (for random feature vectors)."""

    shape: tuple[int, ...]
    zero_fraction: torch.Tensor        # D: how often each dimension is exactly 0
    edges: torch.Tensor                # D×(B+1): histogram bin edges of the non-zero values
    counts: torch.Tensor               # D×B
    mean: float                        # over all entries of all images
    std: float
    zeros: float                       # fraction of zero entries overall (the sparsity)
    max: torch.Tensor                  # D: largest value seen (for single-neuron probes)
    n: int                             # images

    @classmethod
    def estimate(cls, feats: torch.Tensor, bins: int = 32) -> FeatureStats:
        """From N feature tensors (N×…)."""
        n = feats.shape[0]
        flat = feats.reshape(n, -1).float()
        nonzero = flat != 0
        lo = torch.where(nonzero, flat, torch.full_like(flat, float("inf"))).min(0).values
        hi = torch.where(nonzero, flat, torch.full_like(flat, float("-inf"))).max(0).values
        empty = ~nonzero.any(0)
        lo[empty], hi[empty] = 0.0, 0.0
        hi = torch.maximum(hi, lo + 1e-12)
        steps = torch.linspace(0, 1, bins + 1)
        edges = lo[:, None] + (hi - lo)[:, None] * steps[None]
        pos = ((flat - lo) / (hi - lo) * bins).clamp(0, bins - 1).long()
        counts = torch.zeros(flat.shape[1], bins)
        counts.scatter_add_(1, pos.T, nonzero.T.float())
        return cls(shape=tuple(feats.shape[1:]), zero_fraction=1 - nonzero.float().mean(0), edges=edges,
                   counts=counts, mean=float(flat.mean()), std=float(flat.std()),
                   zeros=float(1 - nonzero.float().mean()), max=flat.max(0).values, n=n)

    def sample_histogram(self, count: int = 1, alpha: float = 2.0, seed: int = 0) -> torch.Tensor:
        """Each dimension independently: zero with its own zero frequency (so the sparsity matches
        real features), else a value drawn from its histogram of non-zero values; × ``alpha``
        (paper 001: 2, for contrast)."""
        g = torch.Generator().manual_seed(seed)
        d, bins = self.counts.shape
        probs = self.counts + 1e-12 * (self.counts.sum(1, keepdim=True) == 0)
        which = torch.multinomial(probs, count, replacement=True, generator=g).T          # count×D
        lo = self.edges.gather(1, which.T).T
        hi = self.edges.gather(1, (which + 1).T).T
        vals = lo + (hi - lo) * torch.rand(count, d, generator=g)
        keep = torch.rand(count, d, generator=g) >= self.zero_fraction[None]
        return (vals * keep * alpha).view(count, *self.shape)

    def sample_gaussian(self, count: int = 1, alpha: float = 1.0, seed: int = 0) -> torch.Tensor:
        """One shifted Gaussian for all dimensions, truncated at 0 (max(0, ·)) when the features are
        non-negative: its shift and spread match the overall mean and the fraction of zeros; for
        signed features a plain Gaussian with their mean and std.  × ``alpha``."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(count, *self.shape, generator=g)
        nonneg = bool((self.edges[:, 0] >= 0).all())
        if nonneg and 0 < self.zeros < 1:
            nd = NormalDist()
            z0 = nd.inv_cdf(self.zeros)                      # P(N(μ, σ) ≤ 0) = sparsity → μ = −σ·z0
            sigma = self.mean / max(nd.pdf(z0) - z0 * (1 - self.zeros), 1e-12)
            vals = (-sigma * z0 + sigma * z).clamp_min(0)
        else:
            vals = self.mean + self.std * z
        return vals * alpha


def probe_features(kind: str, phi: torch.Tensor, *, other: torch.Tensor | None = None, k: int = 5,
                   steps: int = 8, stats: FeatureStats | None = None, count: int = 4, alpha: float = 2.0,
                   channel: int = 0, position: tuple[int, int] | None = None, value: float | None = None,
                   seed: int = 0, layout: Layout | None = None) -> list[tuple[str, torch.Tensor]]:
    """Labelled feature tensors for probe ``kind`` (the unchanged Φ0 first where it makes sense);
    ``layout``: the layer's (``core.layout``; C×H×W or C when not given)."""
    if kind not in PROBES:
        raise InvguiError(f"unknown probe {kind!r}; one of {', '.join(PROBES)}")
    if kind == "binarise":
        return [("original", phi), ("binarised", binarise(phi))]
    if kind in ("dropout", "dropout-smallest"):
        mode = "smallest" if kind.endswith("smallest") else "random"
        return [("original", phi), (f"dropout 50% {mode}", dropout(phi, 0.5, mode, seed))]
    if kind.startswith("binarise-dropout"):
        mode = "smallest" if kind.endswith("smallest") else "random"
        return [("original", phi), (f"dropout 50% {mode} + binarised", binarise(dropout(phi, 0.5, mode, seed)))]
    if kind == "top-k":
        return [("original", phi), (f"top {k} only", top_k(phi, k, keep=True))]
    if kind == "zero-top-k":
        return [("original", phi), (f"top {k} zeroed", top_k(phi, k, keep=False))]
    if kind == "interpolate":
        if other is None:
            raise InvguiError("interpolation needs a second image (--other)")
        return [(f"t = {i / (steps - 1):.2f}", f) for i, f in enumerate(interpolate(phi, other, steps))]
    if kind in ("random-histogram", "random-gaussian"):
        if stats is None:
            raise InvguiError("random features need statistics over a folder of images (--stats-data)")
        if kind == "random-histogram":
            samples = stats.sample_histogram(count, alpha, seed)
        else:
            samples = stats.sample_gaussian(count, alpha, seed)
        return [(f"random {i + 1}", s) for i, s in enumerate(samples)]
    # neuron
    lay = layout if layout is not None else plain(tuple(phi.shape))
    if value is None:
        if stats is not None:
            grid = lay.grid
            cell = position or ((grid[0] // 2, grid[1] // 2) if grid else None)
            peak = lay.spatial(stats.max.view(stats.shape)[None])[0] if grid else stats.max.view(stats.shape)
            value = float(peak[(channel, *cell)] if cell else peak[channel])
        else:
            value = float(phi.abs().max())
    return [(f"channel {channel} alone", neuron(lay, channel, position, value))]
