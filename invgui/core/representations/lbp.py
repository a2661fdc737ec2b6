"""Local binary patterns, quantised to 58 as in VLFeat (paper 001, supplementary): not differentiable.

Written here rather than taken from scikit-image: ``skimage.feature.local_binary_pattern`` samples
its 8 neighbours on a circle (the diagonal ones bilinearly interpolated) and its ``nri_uniform``
coding keeps the two flat patterns apart (59 codes), while the papers use the 3×3 pixel
neighbourhood and 58 codes.  The vectorised PyTorch version below also runs on the GPU.

Per pixel (grayscale, replicated border): bit p is 1 when neighbour p (going round the centre,
starting east, counter-clockwise on screen) is *brighter* than the centre.  The 256 codes map to
58: the 56 patterns with exactly one 0→1 transition round the circle (a run of ``length`` 1…7 ones
starting at neighbour ``start`` 0…7) are bins ``start·7 + length − 1`` (0…55); the two flat
patterns (all 0, all 1) are bin 56; every other pattern is bin 57.  Histograms count the pixels of
each ``cell``×``cell`` cell (a border cell counts only its pixels inside the image), giving
58 × ⌈H/cell⌉ × ⌈W/cell⌉.
"""

from __future__ import annotations

import colorsys

import numpy as np
import torch
import torch.nn.functional as F

from ..catalog import LBPParams
from .base import HandCrafted, handcrafted_builder, luma255

BINS = 58
FLAT, OTHER = 56, 57
# (dy, dx) of neighbour p: east, north-east, north, north-west, west, south-west, south, south-east.
NEIGHBOURS = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))


def quantisation_table() -> np.ndarray:
    """256 → 58 lookup table (see the module docstring)."""
    table = np.full(256, OTHER, dtype=np.int64)
    for code in range(256):
        bits = [(code >> p) & 1 for p in range(8)]
        if code in (0, 255):
            table[code] = FLAT
            continue
        rises = [p for p in range(8) if bits[p] == 1 and bits[p - 1] == 0]
        if len(rises) == 1:
            table[code] = rises[0] * 7 + sum(bits) - 1
    return table


TABLE = quantisation_table()


def lbp_codes(x01: torch.Tensor) -> torch.Tensor:
    """Quantised LBP code (0…57) of every pixel of an RGB batch in [0, 1]: N×H×W int64."""
    g = luma255(x01)[:, 0]
    h, w = g.shape[-2:]
    p = F.pad(g[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    code = torch.zeros_like(g, dtype=torch.int64)
    for bit, (dy, dx) in enumerate(NEIGHBOURS):
        nb = p[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        code |= (nb > g).long() << bit
    return torch.as_tensor(TABLE, device=g.device)[code]




class LBPRepresentation(HandCrafted):
    """58-bin LBP histograms over cells (not differentiable: invert with a decoder)."""

    Params = LBPParams
    kind = "LBP"
    differentiable = False

    def __init__(self, params: LBPParams | None = None):
        super().__init__("lbp", params or LBPParams())
        self.title = f"LBP (3×3, 58 patterns, cell {self.params.cell})"

    def output_shape(self, size: int) -> tuple[int, int, int]:
        side = -(-size // self.params.cell)
        return (BINS, side, side)

    def stride(self) -> int:
        return self.params.cell

    def features(self, x01: torch.Tensor, layer: str) -> torch.Tensor:
        self.resolve_layer(layer)
        c = self.params.cell
        with torch.no_grad():
            codes = lbp_codes(x01)
            n, h, w = codes.shape
            hc, wc = -(-h // c), -(-w // c)
            onehot = F.one_hot(codes, BINS).permute(0, 3, 1, 2).to(x01.dtype)
            onehot = F.pad(onehot, (0, wc * c - w, 0, hc * c - h))       # padding counts nothing
            return onehot.reshape(n, BINS, hc, c, wc, c).sum((3, 5))

    def visualize(self, x01: torch.Tensor) -> np.ndarray:
        """Each cell coloured by its most frequent pattern over the grayscale image.

        Uniform patterns: hue = direction of the brighter neighbours (the middle of the run of
        ones; east red, north yellow-green, west cyan, south violet), lighter for longer runs;
        flat: light gray; other patterns: dark gray.
        """
        hist = self.features(x01[:1], self.name)[0].cpu().numpy()
        dominant = hist.argmax(0)
        colours = pattern_colours()
        c = self.params.cell
        h, w = x01.shape[-2:]
        pic = colours[dominant].repeat(c, 0).repeat(c, 1)[:h, :w]
        gray = luma255(x01[:1])[0, 0].cpu().numpy()[..., None] / 255.0
        out = 0.7 * pic + 0.3 * gray
        return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def pattern_colours() -> np.ndarray:
    """58×3 RGB in [0, 1] for the LBP pattern map (see :meth:`LBPRepresentation.visualize`)."""
    out = np.zeros((BINS, 3))
    for b in range(56):
        start, length = divmod(b, 7)
        length += 1
        direction = (start + (length - 1) / 2) % 8 / 8
        out[b] = colorsys.hsv_to_rgb(direction, 1.0 - 0.08 * (length - 1), 0.6 + 0.05 * length)
    out[FLAT] = 0.6
    out[OTHER] = 0.2
    return out


lbp_builder = handcrafted_builder(LBPRepresentation, "LBP")
