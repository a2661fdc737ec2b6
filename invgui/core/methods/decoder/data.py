"""Training data of a decoder: image folders listed and split; random crops made in DataLoader
worker processes, the same crops whatever the number of workers or training processes.

Each crop is a pure function of (seed, epoch, position in the epoch): the epoch's order of images
comes from ``default_rng([seed, epoch, 0])`` and the crop at position p from
``default_rng([seed, epoch, 1, p])``.  So a run is reproducible with 0, 1 or 16 workers, and a
run on N processes (torchrun) sees at every step exactly the global batch a single process
would — which is what lets ``--resume`` continue on another number of processes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ...errors import InvguiError
from ...images import ImageError, image_suffixes, load_image_uint8, resize_center_crop, scan_images

IMAGE_SUFFIXES = image_suffixes()          # every format Pillow opens (WebP, GIF, PPM, … too)
CACHE_SIDE = 4          # decoded training images are kept with their shorter side ≤ CACHE_SIDE × size
MAX_REPLACED = 100      # unreadable files in a row before a lazily read folder is given up on


def list_images(root: str | os.PathLike) -> list[Path]:
    """The image files under ``root``, sorted (``images.scan_images`` also gives the others)."""
    return scan_images(root).images


def split(files: list, held_out: float, seed: int) -> tuple[list, list]:
    """(training, held-out): a seeded random split; at least one held out when there are ≥ 2 files."""
    order = np.random.default_rng(seed).permutation(len(files))
    n_out = 0 if held_out <= 0 or len(files) < 2 else min(len(files) - 1, max(1, round(held_out * len(files))))
    out = sorted(order[:n_out].tolist())
    keep = sorted(order[n_out:].tolist())
    return [files[i] for i in keep], [files[i] for i in out]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                        # macOS, Windows
        return os.cpu_count() or 1


def check_workers(n: int | None) -> int | None:
    """``n`` data workers when it is 0…the cores this process may use (each worker is a process:
    100,000 of them hung the machine); a ValueError saying the range otherwise.  None: the default."""
    if n is None:
        return None
    cores = usable_cores()
    if not 0 <= n <= cores:
        raise InvguiError(f"--workers {n}: give 0 (read images in the training process) up to {cores}, the CPU "
                         f"cores this process may use (each worker is a process)")
    return n


def default_workers(local_processes: int = 1) -> int:
    """Data worker processes per training process: the cores left beside the training processes."""
    return max(0, usable_cores() // max(1, local_processes) - 1)


class ImageSet:
    """Images of a folder with random crops; unreadable files are skipped and counted.

    Up to ``PRELOAD`` images are decoded once and kept as uint8 (shrunk to a shorter side of at most
    ``CACHE_SIDE`` × the crop size: ≤ 0.8 MB each at 128-px crops); a larger collection (ImageNet)
    is read lazily, one file per crop, and its memory does not grow with the folder: the paths are
    one numpy bytes array, which worker processes share instead of copying (a Python list of
    strings is copied page by page as the workers touch its reference counts).  A file that turns
    out unreadable is reported with the crop and replaced by another.
    """

    PRELOAD = 2000

    def __init__(self, sources: list, size: int, jitter: float = 0.0, rotate: bool = False):
        self.size, self.jitter, self.rotate = size, jitter, rotate
        self.lazy = len(sources) > self.PRELOAD
        self.images: list[np.ndarray] = []
        self.skipped: list[str] = []
        if self.lazy:
            self.paths = np.array([os.fsencode(str(s)) for s in sources], dtype=np.bytes_)
            return
        names = []
        for src in sources:
            try:
                img = load_image_uint8(src, min_side=CACHE_SIDE * size)
            except ImageError as e:
                self.skipped.append(str(e))
                continue
            self.images.append(_shrink(img, CACHE_SIDE * size))
            names.append(str(src))
        self.paths = np.array([os.fsencode(n) for n in names], dtype=np.bytes_)

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, i: int) -> str:
        return os.fsdecode(self.paths[i])

    def image(self, i: int, rng: np.random.Generator, skipped: list[str]) -> np.ndarray:
        """Image ``i`` as uint8; in a lazy set an unreadable one is added to ``skipped`` and replaced."""
        if not self.lazy:
            return self.images[i]
        for _ in range(MAX_REPLACED):
            try:
                return _shrink(load_image_uint8(self.name(i), min_side=CACHE_SIDE * self.size), CACHE_SIDE * self.size)
            except ImageError as e:
                skipped.append(str(e))
                i = int(rng.integers(len(self.paths)))
        raise ImageError(f"more than {MAX_REPLACED} unreadable images in a row; is this a folder of images?")

    def crop(self, i: int, rng: np.random.Generator, skipped: list[str] | None = None) -> np.ndarray:
        """A random square crop (side between the crop size and the shorter side), resized, maybe
        flipped: uint8, or float32 in [0, 1] when colour jitter is on (see :func:`to_input`)."""
        img = self.image(i, rng, self.skipped if skipped is None else skipped)
        h, w = img.shape[:2]
        short = min(h, w)
        side = int(rng.integers(min(self.size, short), short + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        patch = img[y:y + side, x:x + side]
        if side != self.size:
            patch = _resize(patch, self.size, self.size)
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        if self.rotate:
            patch = np.rot90(patch, int(rng.integers(4)))
        if self.jitter > 0:
            patch = patch.astype(np.float32) * np.float32(1 / 255)
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
        img = self.image(i, np.random.default_rng(i), self.skipped)
        return resize_center_crop(img.astype(np.float32) * np.float32(1 / 255), self.size)


class Crops(Dataset):
    """Crops keyed by (image, epoch, position): ``dataset[key]`` is (H×W×3 float32, skipped files)."""

    def __init__(self, images: ImageSet, seed: int):
        self.images, self.seed = images, seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[np.ndarray, list[str]]:
        i, epoch, position = key
        skipped: list[str] = []
        crop = self.images.crop(i, np.random.default_rng([self.seed, epoch, 1, position]), skipped)
        return crop, skipped


class GlobalBatches(Sampler):
    """This process's share of every step's global batch, an epoch at a time (``set_epoch``).

    An epoch is ``crops_per_image`` shuffled passes over the images, wrapped around to whole
    batches of ``batch`` crops; process ``rank`` of ``world`` takes a contiguous slice of each.
    Written here rather than taken from ``DistributedSampler``, which gives each process a strided
    share of the whole epoch: the global batch of a step would then depend on the number of
    processes, and a run resumed on another number would see other data.
    """

    def __init__(self, n_images: int, crops_per_image: int, batch: int, seed: int, rank: int = 0, world: int = 1):
        if batch < world:
            raise InvguiError(f"a batch of {batch} cannot be shared by {world} processes; use --batch ≥ {world}")
        self.n, self.crops, self.batch, self.seed = n_images, crops_per_image, batch, seed
        self.rank, self.world = rank, world
        self.steps = max(1, math.ceil(n_images * crops_per_image / batch))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def share(self) -> tuple[int, int]:
        """This process's slice [lo, hi) of a global batch."""
        return self.rank * self.batch // self.world, (self.rank + 1) * self.batch // self.world

    def order(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, 0])
        passes = np.concatenate([rng.permutation(self.n) for _ in range(self.crops)])
        return np.resize(passes, self.steps * self.batch)            # wraps around to whole batches

    def __iter__(self):
        order, (lo, hi) = self.order(), self.share()
        for s in range(self.steps):
            yield [(int(order[p]), self.epoch, p) for p in range(s * self.batch + lo, s * self.batch + hi)]

    def __len__(self) -> int:
        return self.steps


def to_input(x: torch.Tensor) -> torch.Tensor:
    """A batch as the network takes it: float in [0, 1].  Crops travel as uint8 (a quarter of the
    bytes through shared memory and to the GPU) and become float on the training device."""
    return x.float().mul_(1 / 255) if x.dtype == torch.uint8 else x.float()


def collate(samples: list[tuple[np.ndarray, list[str]]]) -> tuple[torch.Tensor, list[str]]:
    """A batch N×3×H×W (made contiguous in the worker, not in the training loop) and the files skipped."""
    x = torch.from_numpy(np.stack([s[0] for s in samples])).permute(0, 3, 1, 2).contiguous()
    return x, [m for s in samples for m in s[1]]


def loader(crops: Crops, batches: GlobalBatches, workers: int, pin_memory: bool) -> DataLoader:
    """Crops made in ``workers`` processes (0: in this one), kept alive across epochs, prefetched."""
    return DataLoader(crops, batch_sampler=batches, num_workers=workers, collate_fn=collate,
                      pin_memory=pin_memory, persistent_workers=workers > 0,
                      prefetch_factor=4 if workers > 0 else None)


def _shrink(img: np.ndarray, max_short: int) -> np.ndarray:
    h, w = img.shape[:2]
    if min(h, w) <= max_short:
        return img
    f = max_short / min(h, w)
    return _resize(img, max(1, round(w * f)), max(1, round(h * f)))


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """uint8 H×W×3 resized by Pillow: area averaging down, bilinear up.  Not OpenCV: this runs in
    forked DataLoader workers, and OpenCV's thread pool, once used by the parent (LBP, sparse SIFT),
    deadlocks a forked child at its next parallel call (seen: cv2.setNumThreads hung in a worker)."""
    from PIL import Image

    down = w < img.shape[1] or h < img.shape[0]
    out = Image.fromarray(img).resize((w, h), Image.Resampling.BOX if down else Image.Resampling.BILINEAR)
    return np.asarray(out)


def _batch(arrs: list[np.ndarray], device) -> torch.Tensor:
    return to_input(torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).to(device))
