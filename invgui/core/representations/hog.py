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

import numpy as np
import torch
import torch.nn.functional as F

from ..catalog import HOGParams
from .base import HandCrafted, handcrafted_builder, luma255

CLAMP = 0.2
TEXTURE = 0.2357
EPS = 1e-4           # block-energy epsilon (on 0–255 images: negligible against real gradients)


def _tent(cell: int, dtype, device) -> torch.Tensor:
    """2c×2c bilinear (tent) kernel: weight of a pixel for the cell whose window it is in."""
    j = torch.arange(2 * cell, dtype=dtype, device=device)
    t = (1 - (j + 0.5 - cell).abs() / cell).clamp_min(0)
    return t[:, None] * t[None, :]


def hog(x01: torch.Tensor, cell: int = 8, orientations: int = 9, bilinear: bool = False) -> torch.Tensor:
    """UoCTTI HOG of an RGB batch in [0, 1] (N×3×H×W) → N×(3·O+4)×⌈H/cell⌉×⌈W/cell⌉."""
    g = luma255(x01)
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
        # The bin of largest projection dx·cos θk + dy·sin θk (VLFeat) is the bin centre nearest to
        # the gradient's angle: found from atan2 without the 2·O-channel projection tensor.
        best = torch.floor(torch.atan2(dy, dx).detach() * (n_bins / (2 * math.pi)) + 0.5).long() % n_bins
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




class HOGRepresentation(HandCrafted):
    """HOG / HOGb as a representation with a single layer."""

    def __init__(self, name: str = "hog", bilinear: bool = False, params: HOGParams | None = None):
        super().__init__(name, params or HOGParams())
        self.bilinear = bilinear
        self.kind = "HOGb" if bilinear else "HOG"
        variant = "bilinear orientations" if bilinear else "hard orientations"
        self.title = f"HOG (UoCTTI, {variant}, cell {self.params.cell})"

    Params = HOGParams

    def output_shape(self, size: int) -> tuple[int, int, int]:
        side = -(-size // self.params.cell)
        return (3 * self.params.orientations + 4, side, side)

    def stride(self) -> int:
        return self.params.cell

    def features(self, x01: torch.Tensor, layer: str) -> torch.Tensor:
        self.resolve_layer(layer)
        return hog(x01, self.params.cell, self.params.orientations, self.bilinear)

    def visualize(self, x01: torch.Tensor) -> np.ndarray:
        """VLFeat-style glyphs: per cell, one bar along each edge orientation, bright = strong."""
        with torch.no_grad():
            phi = self.features(x01[:1], self.name)[0].cpu().numpy()
        o = self.params.orientations
        return hog_glyphs(phi[2 * o:3 * o])


def hog_glyphs(undirected: np.ndarray, glyph: int = 15) -> np.ndarray:
    """Render O×h×w contrast-insensitive histograms as h·glyph × w·glyph RGB glyphs.

    Bin k holds gradients at angle k·π/O (x right, y down); its bar is drawn along the edge,
    perpendicular to the gradient.  Values are scaled by the largest one.
    """
    import cv2

    o, h, w = undirected.shape
    templates = np.zeros((o, glyph, glyph), np.float32)
    c = (glyph - 1) / 2
    for k in range(o):
        t = k * math.pi / o + math.pi / 2
        dx, dy = math.cos(t) * c, math.sin(t) * c
        img = np.zeros((glyph * 4, glyph * 4), np.uint8)      # drawn ×4 (sub-pixel shift 2) then shrunk
        p0 = (int(round((c - dx) * 16)), int(round((c - dy) * 16)))
        p1 = (int(round((c + dx) * 16)), int(round((c + dy) * 16)))
        cv2.line(img, p0, p1, 255, thickness=6, lineType=cv2.LINE_AA, shift=2)   # 1.5 px once shrunk
        templates[k] = cv2.resize(img, (glyph, glyph), interpolation=cv2.INTER_AREA) / 255.0
    v = np.clip(undirected, 0, None)
    pic = np.einsum("khw,kyx->hywx", v, templates).reshape(h * glyph, w * glyph)
    pic = pic / max(float(np.percentile(pic, 99.5)), 1e-12)   # bars overlap at the centre: not the max
    pic = (np.clip(pic, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.repeat(pic[:, :, None], 3, axis=2)


def hog_builder(bilinear: bool):
    name = "hogb" if bilinear else "hog"
    return handcrafted_builder(lambda p: HOGRepresentation(name, bilinear=bilinear, params=p), name.upper())
