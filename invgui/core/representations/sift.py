"""Sparse SIFT (not differentiable): OpenCV's SIFT keypoints and descriptors arranged on a grid.

Paper 001 §3 / supplementary: keypoints are placed on a grid of ``cell``-pixel cells (4 px).  An
empty cell is a zero vector; a cell with a keypoint holds ``(descriptor, x mod s, y mod s, sin θ,
cos θ, log scale)``; when several keypoints fall into one cell a random one is kept (seeded).
So the output is (D + 5) × ⌈H/s⌉ × ⌈W/s⌉ with D = 128.

Detection and description are OpenCV's (``cv2.SIFT_create``), on the 8-bit grayscale image.
The paper used VLFeat with 3 levels per octave starting at octave 0; OpenCV starts at octave −1
(the image doubled), so it also finds keypoints finer than VLFeat's smallest, and its
descriptors are scaled by 512 and clipped at 255 — they are divided by 512 here, which gives
them (about) unit norm like VLFeat's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..catalog import SIFTParams
from .base import HandCrafted, handcrafted_builder, luma255

DESCRIPTOR = 128
EXTRA = ("x mod s", "y mod s", "sin θ", "cos θ", "log scale")
CHANNELS = DESCRIPTOR + len(EXTRA)




@dataclass
class Keypoint:
    x: float
    y: float
    size: float          # diameter of the meaningful neighbourhood, pixels (OpenCV's KeyPoint.size)
    angle: float         # degrees, OpenCV convention
    descriptor: np.ndarray


class SIFTRepresentation(HandCrafted):
    """Sparse SIFT keypoints on a grid: 133 × ⌈H/s⌉ × ⌈W/s⌉ (not differentiable: invert with a decoder)."""

    Params = SIFTParams
    kind = "SparseSIFT"
    differentiable = False

    def __init__(self, params: SIFTParams | None = None):
        super().__init__("sift", params or SIFTParams())
        self.title = f"Sparse SIFT (OpenCV keypoints on a {self.params.cell}-px grid)"

    def output_shape(self, size: int) -> tuple[int, int, int]:
        side = -(-size // self.params.cell)
        return (CHANNELS, side, side)

    def stride(self) -> int:
        return self.params.cell

    def _detector(self):
        import cv2

        p = self.params
        return cv2.SIFT_create(nOctaveLayers=p.octave_layers, contrastThreshold=p.contrast_threshold,
                               edgeThreshold=p.edge_threshold, sigma=p.sigma)

    def keypoints(self, x01: torch.Tensor) -> tuple[list[Keypoint], list[Keypoint]]:
        """(all keypoints found, the ones kept on the grid) for one RGB image in [0, 1] (1×3×H×W)."""
        gray = luma255(x01[:1].detach().float().cpu())[0, 0].round().clamp(0, 255).to(torch.uint8).numpy()
        kps, desc = self._detector().detectAndCompute(gray, None)
        found = [Keypoint(k.pt[0], k.pt[1], k.size, k.angle, desc[i] / 512.0) for i, k in enumerate(kps)]
        s = self.params.cell
        h, w = gray.shape
        hc, wc = -(-h // s), -(-w // s)
        rng = np.random.default_rng(self.params.seed)
        taken: dict[tuple[int, int], Keypoint] = {}
        for i in rng.permutation(len(found)):
            k = found[i]
            cell = (min(int(k.y // s), hc - 1), min(int(k.x // s), wc - 1))
            taken.setdefault(cell, k)          # the first in the seeded random order wins
        return found, list(taken.values())

    def features(self, x01: torch.Tensor, layer: str) -> torch.Tensor:
        self.resolve_layer(layer)
        s = self.params.cell
        h, w = x01.shape[-2:]
        hc, wc = -(-h // s), -(-w // s)
        out = np.zeros((x01.shape[0], CHANNELS, hc, wc), np.float32)
        for n in range(x01.shape[0]):
            for k in self.keypoints(x01[n:n + 1])[1]:
                cy, cx = min(int(k.y // s), hc - 1), min(int(k.x // s), wc - 1)
                t = math.radians(k.angle)
                out[n, :DESCRIPTOR, cy, cx] = k.descriptor
                out[n, DESCRIPTOR:, cy, cx] = (k.x - cx * s, k.y - cy * s, math.sin(t), math.cos(t),
                                               math.log(max(k.size, 1e-6)))
        return torch.from_numpy(out).to(device=x01.device, dtype=x01.dtype)

    def visualize(self, x01: torch.Tensor) -> np.ndarray:
        """The kept keypoints drawn on the grayscale image (×2): circle = scale, radius line = orientation."""
        import cv2

        zoom = 2
        gray = luma255(x01[:1].detach().float().cpu())[0, 0].clamp(0, 255).numpy().astype(np.uint8)
        big = cv2.resize(gray, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
        big = (big * 0.6).astype(np.uint8)          # dim the photo so the keypoints stand out
        kept = self.keypoints(x01)[1]
        kps = [cv2.KeyPoint((k.x + 0.5) * zoom - 0.5, (k.y + 0.5) * zoom - 0.5, k.size * zoom, k.angle)
               for k in kept]
        pic = cv2.drawKeypoints(big, kps, None, color=(255, 220, 40),
                                flags=cv2.DRAW_MATCHES_FLAGS_DRAW_RICH_KEYPOINTS)
        return np.ascontiguousarray(pic)            # drawn in RGB order already (colour given as RGB)


sift_builder = handcrafted_builder(SIFTRepresentation, "sparse SIFT")
