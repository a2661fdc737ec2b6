"""HOG in the UoCTTI variant (Felzenszwalb et al., as in VLFeat's ``vl_hog``), in PyTorch.

Written here because no dependency offers a *differentiable*, GPU-capable UoCTTI HOG:
scikit-image's ``hog`` is the Dalal–Triggs variant in NumPy, OpenCV's ``HOGDescriptor`` likewise
and neither has gradients; the optimisation method needs ∂Φ/∂x.

Per cell of ``cell``×``cell`` pixels (on the grayscale image, 0–255 scale):
  * gradients by central differences (replicated border); each pixel votes its magnitude into
    2·O directed orientation bins — HOG: the bin whose direction has the largest projection
    (hard, as in VLFeat); HOGb: the two nearest bins, bilinearly (paper 000's smoother variant);
  * votes are spread bilinearly over the 4 nearest cell centres;
  * each cell is normalised by its 4 surrounding 2×2 blocks (block energy from the
    contrast-insensitive histograms, zero outside the image), clamped at 0.2;
  * 31 features: 2·O contrast-sensitive + O contrast-insensitive (each ½·Σ over the 4
    normalisations) + 4 texture energies (0.2357·Σ over the sensitive bins, one per normalisation).
Output: 31 × ⌈H/cell⌉ × ⌈W/cell⌉ (for O = 9).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import LayerInfo, Representation, RepresentationError

CLAMP = 0.2
TEXTURE = 0.2357
EPS = 1e-4           # block-energy epsilon (on 0–255 images: negligible against real gradients)


def grayscale(x01: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of an RGB batch in [0, 1], on the 0–255 scale: N×1×H×W."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
    return (x01 * w).sum(1, keepdim=True) * 255.0


def _tent(cell: int, dtype, device) -> torch.Tensor:
    """2c×2c bilinear (tent) kernel: weight of a pixel for the cell whose window it is in."""
    j = torch.arange(2 * cell, dtype=dtype, device=device)
    t = (1 - (j + 0.5 - cell).abs() / cell).clamp_min(0)
    return t[:, None] * t[None, :]


def hog(x01: torch.Tensor, cell: int = 8, orientations: int = 9, bilinear: bool = False) -> torch.Tensor:
    """UoCTTI HOG of an RGB batch in [0, 1] (N×3×H×W) → N×(3·O+4)×⌈H/cell⌉×⌈W/cell⌉."""
    g = grayscale(x01)
    n, _, h, w = g.shape
    p = F.pad(g, (1, 1, 1, 1), mode="replicate")
    dx = (p[:, :, 1:-1, 2:] - p[:, :, 1:-1, :-2]) / 2
    dy = (p[:, :, 2:, 1:-1] - p[:, :, :-2, 1:-1]) / 2
    mag = torch.sqrt(dx * dx + dy * dy + 1e-12)
    n_bins = 2 * orientations
    if bilinear:
        ang = torch.atan2(dy, dx) % (2 * math.pi)              # [0, 2π)
        pos = ang * (n_bins / (2 * math.pi))
        lo = torch.floor(pos).detach()
        frac = pos - lo
        lo_i = lo.long() % n_bins
        hi_i = (lo_i + 1) % n_bins
        votes = torch.zeros(n, n_bins, h, w, dtype=g.dtype, device=g.device)
        votes = votes.scatter_add(1, lo_i, mag * (1 - frac)).scatter_add(1, hi_i, mag * frac)
    else:
        theta = torch.arange(n_bins, dtype=g.dtype, device=g.device) * (2 * math.pi / n_bins)
        proj = dx * theta.cos().view(1, -1, 1, 1) + dy * theta.sin().view(1, -1, 1, 1)
        best = proj.argmax(1, keepdim=True)
        votes = torch.zeros(n, n_bins, h, w, dtype=g.dtype, device=g.device).scatter(1, best, mag)
    # Spread votes bilinearly over cell centres: pad so that there are ⌈H/c⌉ × ⌈W/c⌉ cells.
    hc, wc = -(-h // cell), -(-w // cell)
    half = cell // 2
    votes = F.pad(votes, (half, cell - half + wc * cell - w, half, cell - half + hc * cell - h))
    kernel = _tent(cell, g.dtype, g.device).expand(n_bins, 1, 2 * cell, 2 * cell)
    hist = F.conv2d(votes, kernel, stride=cell, groups=n_bins)            # N×2O×hc×wc
    hist = hist[:, :, :hc, :wc]
    unsigned = hist[:, :orientations] + hist[:, orientations:]
    energy = unsigned.square().sum(1, keepdim=True)                       # N×1×hc×wc
    block = F.avg_pool2d(F.pad(energy, (1, 1, 1, 1)), 2, stride=1) * 4     # N×1×(hc+1)×(wc+1)
    factors = [block[:, :, dy_:dy_ + hc, dx_:dx_ + wc] for dy_ in (0, 1) for dx_ in (0, 1)]
    sensitive = hist.new_zeros(hist.shape)
    insensitive = hist.new_zeros(unsigned.shape)
    texture = []
    for f in factors:
        inv = torch.rsqrt(f + EPS)
        hs = (hist * inv).clamp(max=CLAMP)
        sensitive = sensitive + 0.5 * hs
        insensitive = insensitive + 0.5 * (unsigned * inv).clamp(max=CLAMP)
        texture.append(TEXTURE * hs.sum(1, keepdim=True))
    return torch.cat([sensitive, insensitive] + texture, dim=1)


class HOGRepresentation(Representation):
    """HOG / HOGb as a representation with a single layer."""

    differentiable = True
    grayscale = True
    mean = (0.5, 0.5, 0.5)
    std = (1.0, 1.0, 1.0)
    input_size = 224
    weights_info = "none (hand-crafted)"
    weights_file = None

    def __init__(self, name: str = "hog", bilinear: bool = False, cell: int = 8, orientations: int = 9):
        self.name = name
        self.bilinear, self.cell, self.orientations = bilinear, cell, orientations
        variant = "bilinear orientations" if bilinear else "hard orientations"
        self.title = f"HOG (UoCTTI, {variant}, cell {cell})"
        self.default_layer = name

    def _info(self, size: int) -> LayerInfo:
        c = 3 * self.orientations + 4
        side = -(-size // self.cell)
        return LayerInfo(name=self.name, kind="HOGb" if self.bilinear else "HOG", shape=(c, side, side),
                         depth=0, order=0, stride=self.cell, relative_depth=0.0)

    def layers(self, size: int | None = None) -> list[LayerInfo]:
        return [self._info(size or self.input_size)]

    def layer_tree(self, size: int | None = None) -> list[LayerInfo]:
        return self.layers(size)

    def resolve_layer(self, layer: str | None) -> str:
        if layer in (None, "", self.name):
            return self.name
        raise RepresentationError(f"{self.name} has a single layer, {self.name!r}, not {layer!r}")

    def features(self, x01: torch.Tensor, layer: str) -> torch.Tensor:
        self.resolve_layer(layer)
        return hog(x01, self.cell, self.orientations, self.bilinear)


def hog_builder(bilinear: bool):
    def build(weights: str | None = None, random_weights: bool = False) -> HOGRepresentation:
        if weights:
            raise RepresentationError("HOG is hand-crafted and takes no weights file")
        return HOGRepresentation("hogb" if bilinear else "hog", bilinear=bilinear)

    return build
