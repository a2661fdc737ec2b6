"""Training data of a decoder: image folders listed, split, decoded, cropped and cached."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ...images import ImageError, load_image, resize_center_crop

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
CACHE_SIDE = 4          # decoded training images are kept with their shorter side ≤ CACHE_SIDE × size


def list_images(root: str | os.PathLike) -> list[Path]:
    root = Path(root)
    if root.is_file():
        raise ImageError(f"{root}: expected a folder of images, got a file")
    if not root.is_dir():
        raise ImageError(f"{root}: no such folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def split(files: list, held_out: float, seed: int) -> tuple[list, list]:
    """(training, held-out): a seeded random split; at least one held out when there are ≥ 2 files."""
    order = np.random.default_rng(seed).permutation(len(files))
    n_out = 0 if held_out <= 0 or len(files) < 2 else min(len(files) - 1, max(1, round(held_out * len(files))))
    out = sorted(order[:n_out].tolist())
    keep = sorted(order[n_out:].tolist())
    return [files[i] for i in keep], [files[i] for i in out]


class ImageSet:
    """Images of a folder with random crops; unreadable files are skipped and counted.

    Up to ``PRELOAD`` images are decoded once and kept (shrunk to a shorter side of at most
    ``CACHE_SIDE`` × the crop size); a larger collection (ImageNet) is read lazily, one file per
    crop, and a file that turns out unreadable is counted and replaced by another.
    """

    PRELOAD = 2000

    def __init__(self, sources: list, size: int, jitter: float = 0.0, rotate: bool = False):
        self.size, self.jitter, self.rotate = size, jitter, rotate
        self.lazy = len(sources) > self.PRELOAD
        self.images: list[np.ndarray] = []
        self.names: list[str] = []
        self.skipped: list[str] = []
        if self.lazy:
            self.names = [str(s) for s in sources]
            return
        for src in sources:
            try:
                img = load_image(src)
            except ImageError as e:
                self.skipped.append(str(e))
                continue
            self.images.append(_shrink(img, CACHE_SIDE * size))
            self.names.append(str(src))

    def __len__(self) -> int:
        return len(self.names)

    def image(self, i: int, rng: np.random.Generator) -> np.ndarray:
        if not self.lazy:
            return self.images[i]
        for _ in range(100):
            try:
                return _shrink(load_image(self.names[i]), CACHE_SIDE * self.size)
            except ImageError as e:
                self.skipped.append(str(e))
                i = int(rng.integers(len(self.names)))
        raise ImageError("more than 100 unreadable images in a row; is this a folder of images?")

    def crop(self, i: int, rng: np.random.Generator) -> np.ndarray:
        """A random square crop (side between the crop size and the shorter side), resized, maybe flipped."""
        import cv2

        img = self.image(i, rng)
        h, w = img.shape[:2]
        short = min(h, w)
        side = int(rng.integers(min(self.size, short), short + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        patch = img[y:y + side, x:x + side]
        if side != self.size:
            interp = cv2.INTER_AREA if side > self.size else cv2.INTER_LINEAR
            patch = cv2.resize(patch, (self.size, self.size), interpolation=interp)
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        if self.rotate:
            patch = np.rot90(patch, int(rng.integers(4)))
        if self.jitter > 0:
            j = self.jitter
            gray = patch @ np.array([0.299, 0.587, 0.114], np.float32)
            mean = float(gray.mean())
            sat = 1 + j * float(rng.uniform(-1, 1))
            con = 1 + j * float(rng.uniform(-1, 1))
            bri = 0.5 * j * float(rng.uniform(-1, 1))
            patch = gray[..., None] + sat * (patch - gray[..., None])
            patch = np.clip(mean + con * (patch - mean) + bri, 0, 1).astype(np.float32)
        return np.ascontiguousarray(patch)

    def centre(self, i: int) -> np.ndarray:
        return resize_center_crop(self.image(i, np.random.default_rng(i)), self.size)


def _shrink(img: np.ndarray, max_short: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    if min(h, w) <= max_short:
        return img
    f = max_short / min(h, w)
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _batch(arrs: list[np.ndarray], device) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).to(device)


# -- checkpoints ----------------------------------------------------------------------------------

