"""Load, validate, convert and save images.

Every loaded image becomes an ``H×W×3`` float32 RGB array in [0, 1] by this rule:

* 8-bit images are divided by 255; 16-bit images (grayscale or colour, PNG/TIFF)
  by 65535; 32-bit integer images by 65535 too (how Pillow stores 16-bit
  grayscale), float images are clipped to [0, 1];
* grayscale (and 1-bit) images are replicated to three channels;
* palette images are expanded through their palette;
* an alpha channel is composited over a **white** background, then dropped;
* CMYK and YCbCr are converted to RGB by Pillow;
* EXIF orientation is applied, so a photo shows the way a viewer shows it.

``sample:NAME`` loads a photo bundled with scikit-image (no download).
Problems raise :class:`ImageError`, whose message names the file and the reason.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import numpy as np

from .catalog import FRAMINGS
from .errors import InvguiError
from .files import _SPECIAL, path_problem, to_uint8  # noqa: F401  (to_uint8: the image API's)

MIN_SIDE = 16                      # smaller images cannot feed any representation we offer
MAX_PIXELS = 256_000_000           # above this we refuse instead of exhausting memory
# A file is decoded to at most this shorter side (the largest working size, OptimizeParams.size's
# maximum): a JPEG at a reduced scale straight from the codec (draft mode: 1/2, 1/4, 1/8), any
# other format resized right after decoding, before the float conversion (4 bytes a sample).
LOAD_SIDE = 4096
# What decoding may take before the image is reduced: the codec's own buffer (and OpenCV's 16-bit
# reader for deep colour).  A 9,000² 16-bit RGB PNG needs 0.97 GB, a 12,000² JPEG decoded at half
# scale 0.11 GB; a 16,000² 16-bit RGBA PNG (2 GB) is refused before a byte of it is decoded.
MAX_DECODE_BYTES = 1 << 30

# scikit-image's bundled photos that ship inside the wheel (no pooch download).
SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "camera", "cat", "coins", "horse",
           "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "text")
SAMPLE_PREFIX = "sample:"


class ImageError(InvguiError):
    """An image could not be loaded or saved; the message names the file and why."""


def to_float_rgb(arr: np.ndarray, *, source: str = "array") -> np.ndarray:
    """Convert an array of any supported layout/dtype to ``H×W×3`` float32 in [0, 1]."""
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"{source}: unsupported image layout {arr.shape}; expected H×W, H×W×3 or H×W×4")
    # In place after the one conversion: a 4096² image is 200 MB a float copy.
    if a.dtype == np.bool_:
        f = a.astype(np.float32)
    elif a.dtype == np.uint8:
        f = a.astype(np.float32)
        f /= np.float32(255.0)
    elif a.dtype in (np.uint16, np.int32, np.uint32, np.int64):
        f = a.astype(np.float32)
        f /= np.float32(65535.0)
    elif np.issubdtype(a.dtype, np.floating):
        f = a.astype(np.float32)
        if not np.isfinite(f).all():
            raise ImageError(f"{source}: the image contains NaN or infinite values")
    else:
        raise ImageError(f"{source}: unsupported pixel type {a.dtype}")
    np.clip(f, 0.0, 1.0, out=f)
    channels = f.shape[2]
    if channels in (2, 4):                           # composite alpha over white
        alpha = f[..., -1:]
        f = f[..., :-1] * alpha + (1.0 - alpha)
        channels -= 1
    if channels == 1:
        f = np.repeat(f, 3, axis=2)
    _check_size(f.shape[1], f.shape[0], source)
    return np.ascontiguousarray(f, dtype=np.float32)


def _check_size(w: int, h: int, source: str) -> None:
    if w < MIN_SIDE or h < MIN_SIDE:
        raise ImageError(f"{source}: the image is {w}×{h} pixels; invgui needs at least {MIN_SIDE}×{MIN_SIDE}")
    if w * h > MAX_PIXELS:
        raise ImageError(f"{source}: the image is {w}×{h} pixels, more than invgui's limit of "
                         f"{MAX_PIXELS // 1_000_000} megapixels; downscale it first")


# The file of each sample in scikit-image's data folder (what its ``skimage.data.NAME()`` reads).
# Read with Pillow directly because ``skimage.data`` reads through ``skimage.io``, whose import
# (colour conversions, SciPy's linear algebra) adds ~0.25 s to a cold start; the result is the
# same array (tests/core/test_images.py compares).  Samples not listed go through skimage.data.
SAMPLE_FILES = {"astronaut": "astronaut.png", "chelsea": "chelsea.png", "cat": "chelsea.png",
                "coffee": "coffee.png", "rocket": "rocket.jpg", "camera": "camera.png", "coins": "coins.png",
                "hubble_deep_field": "hubble_deep_field.jpg", "immunohistochemistry": "ihc.png",
                "moon": "moon.png", "page": "page.png", "retina": "retina.jpg", "text": "text.png"}

# The samples as a set of distinct photos — evaluation sets (N of paper 001), `invgui evaluate
# --data samples`, probe statistics: "cat" is scikit-image's second name for chelsea's photo, and a
# photo counted twice puts a zero into the mean distance between pairs (N 3.7 % too low).
SAMPLE_SET = tuple(n for i, n in enumerate(SAMPLES)
                   if n not in SAMPLE_FILES or SAMPLE_FILES[n] not in {SAMPLE_FILES.get(m) for m in SAMPLES[:i]})


def load_sample(name: str) -> np.ndarray:
    import skimage.data

    if name not in SAMPLES:
        raise ImageError(f"{SAMPLE_PREFIX}{name}: no such sample; choose one of {', '.join(SAMPLES)}")
    source = f"{SAMPLE_PREFIX}{name}"
    path = Path(skimage.data.__file__).parent / SAMPLE_FILES.get(name, "-")
    if path.is_file():
        from PIL import Image

        with Image.open(path) as im:
            return to_float_rgb(np.asarray(im), source=source)
    return to_float_rgb(getattr(skimage.data, name)(), source=source)


def check_source(source: str | os.PathLike) -> None:
    """The cheap checks of ``load_image`` (the sample exists; the path is a readable regular file),
    decoding nothing.  A FIFO, socket or device is refused here: opening one blocks or never ends."""
    s = str(source)
    if s.startswith(SAMPLE_PREFIX):
        if s[len(SAMPLE_PREFIX):] not in SAMPLES:
            raise ImageError(f"{s}: no such sample; choose one of {', '.join(SAMPLES)}")
        return
    path = Path(s)
    try:
        st = path.stat()                        # follows links: a link to a FIFO is a FIFO
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as e:
        raise ImageError(path_problem(path, e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{path}: is a folder, not an image file")
    for test, what in _SPECIAL:
        if test(st.st_mode):
            raise ImageError(f"{path}: is {what}, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"{path}: is not a regular file")
    if not os.access(path, os.R_OK):
        raise ImageError(f"{path}: cannot read (permission denied)")


def image_suffixes() -> frozenset[str]:
    """The file-name endings of every format Pillow can open (PNG, JPEG, TIFF, BMP, WebP, GIF's first
    frame, PPM/PGM, TGA, …): what a folder of images is listed by.  Pillow's own table, so a format
    a newer Pillow reads is listed without a change here."""
    from PIL import Image

    Image.init()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


class Listing:
    """The files under a folder: those an image format is named by (``images``, sorted by path) and
    the rest (``others``: not evaluated or trained on, but counted and named)."""

    def __init__(self, images: list[Path], others: list[Path]):
        self.images, self.others = images, others


def scan_images(root: str | os.PathLike) -> Listing:
    """Every file under ``root`` (recursively), split into image files and the others."""
    root = Path(root)
    if root.is_file():
        raise ImageError(f"{root}: expected a folder of images, got a file")
    if not root.is_dir():
        raise ImageError(f"{root}: no such folder")
    suffixes = image_suffixes()
    images: list[Path] = []
    others: list[Path] = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            (images if p.suffix.lower() in suffixes else others).append(p)
    return Listing(images, others)


def skipped_words(others: list, unreadable: list[str], first: int = 3) -> str:
    """"skipped N files: K not images by their names (a, b, …), M unreadable (x: why; …)" — what a
    folder's reader left out and why, the first few of each named; "" when nothing was."""
    if not others and not unreadable:
        return ""

    def few(names: list[str]) -> str:
        return "; ".join(names[:first]) + (f"; … {len(names) - first} more" if len(names) > first else "")

    parts = []
    if others:
        parts.append(f"{len(others)} not images by their names ({few([Path(o).name for o in others])})")
    if unreadable:
        parts.append(f"{len(unreadable)} unreadable ({few(list(unreadable))})")
    n = len(others) + len(unreadable)
    return f"skipped {n} file{'s' if n != 1 else ''}: " + ", ".join(parts)


def load_image(source: str | os.PathLike, min_side: int | None = LOAD_SIDE) -> np.ndarray:
    """Load ``source`` (a path or ``sample:NAME``) as ``H×W×3`` float32 RGB in [0, 1].

    ``min_side``: the caller will shrink the image to this shorter side anyway, so a JPEG may be
    decoded at a reduced scale (1/2, 1/4, 1/8: much faster for big photos) as long as its shorter
    side stays ≥ ``min_side``, and an image of any format whose shorter side is still larger is
    resized to it before the float conversion.  The default is the largest working size, so no
    method ever sees less than it asks for; ``None`` decodes whole (within the limits).
    """
    s = str(source)
    check_source(s)
    if s.startswith(SAMPLE_PREFIX):
        return load_sample(s[len(SAMPLE_PREFIX):])
    return to_float_rgb(_decode(Path(s), min_side, shrink=True), source=s)


def load_image_uint8(source: str | os.PathLike, min_side: int | None = None) -> np.ndarray:
    """:func:`load_image` as ``H×W×3`` uint8 (the same rules, rounded to 8 bits), without the float
    round trip for the common 8-bit RGB or grayscale file: a decoder's training crops, read by the
    thousand, spent 2 of their 5 ms converting to float and back."""
    s = str(source)
    check_source(s)
    if not s.startswith(SAMPLE_PREFIX):
        arr = _decode(Path(s), min_side)
        if arr.dtype == np.uint8 and (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
            return np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr)
        return to_uint8(to_float_rgb(arr, source=s))
    return to_uint8(load_image(s))


# Bytes a pixel of each Pillow mode takes in Pillow's buffer (3-channel modes are stored in 4)
# and in the NumPy copy made of it.
_PILLOW_BYTES = {"1": (1, 1), "L": (1, 1), "P": (1, 4), "LA": (4, 2), "PA": (4, 4), "I;16": (2, 2),
                 "I;16B": (2, 2), "I;16L": (2, 2), "I;16N": (2, 2), "I": (4, 4), "F": (4, 4)}
_DEEP_GRAY = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _decode_bytes(im, deep_colour: bool) -> int:
    """What decoding ``im`` (after any draft) allocates before it is reduced: Pillow's buffer and
    its NumPy copy, or OpenCV's for deep colour (read by OpenCV alone; measured: a 9,000² 16-bit RGB
    PNG, 486 MB of pixels, peaks at 0.99 GB in ``cv2.imread``)."""
    w, h = im.size
    if deep_colour:
        return w * h * (16 if "A" in im.mode else 12)        # OpenCV's PNG reader peaks at twice its result
    return w * h * sum(_PILLOW_BYTES.get(im.mode, (4, 4)))


def _check_jpeg_length(path: Path, size: tuple[int, int]) -> None:
    """Refuse, before decoding, a JPEG too short for the size its header claims.  Huffman coding
    spends at least one bit on every 8×8 block's DC coefficient (a code is never shorter), so a
    W×H baseline or progressive JPEG has at least W·H/512 bytes; a file short of that lies about
    its size or lost its data, and libjpeg would pad the rest with grey at full cost (an 8 KB file
    claiming 13,370² pixels took 12.6 s and 4.7 GB).  Arithmetic-coded JPEGs (SOF9–15, rare) have no such bound."""
    w, h = size
    have = path.stat().st_size
    need = (math.ceil(w / 8) * math.ceil(h / 8)) // 8
    if have >= need:
        return
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    head = head[:head.find(b"\xff\xda")] if b"\xff\xda" in head else head      # the markers before the scan
    if any(bytes([0xFF, m]) in head for m in (0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)):
        return
    raise ImageError(f"{path}: the header says {w}×{h} pixels, but a JPEG of that size has at least "
                     f"{_gb(need) if need >= 1e6 else f'{need // 1000} KB'} and the file has {have:,} bytes: "
                     "it is damaged or truncated")


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _decode(path: Path, min_side: int | None, shrink: bool = False) -> np.ndarray:
    """The file's pixels as Pillow (or, for 16-bit colour, OpenCV) gives them (a JPEG drafted to a
    shorter side ≥ ``min_side``); ``shrink``: resized to that shorter side where still larger (the
    decoder's training pipeline resizes its crops itself).  ImageError if it cannot."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS        # Pillow's bomb warning at our own limit (we refuse past it)
    header = ""
    arr = None
    try:
        with Image.open(path) as im:
            _check_size(*im.size, str(path))
            header = f" (its header says {im.size[0]}×{im.size[1]} pixels)"
            if im.format == "JPEG":
                _check_jpeg_length(path, im.size)
            if min_side and im.format == "JPEG" and min(im.size) > 2 * min_side:
                f = min_side / min(im.size)
                im.draft(None, (max(1, math.ceil(im.size[0] * f)), max(1, math.ceil(im.size[1] * f))))
            # Pillow hands out 16-bit colour as 8 bits: such a file is read by OpenCV alone (not
            # decoded twice), unless it must be turned by its EXIF orientation (Pillow's job).
            deep = _sixteen_bit(im, path) and im.mode not in _DEEP_GRAY
            deep_alone = deep and im.getexif().get(0x0112, 1) == 1
            need = _decode_bytes(im, deep_alone) + (0 if deep_alone else deep * im.size[0] * im.size[1] * 8)
            if need > MAX_DECODE_BYTES:             # refused before decoding a byte
                raise ImageError(f"{path}: the image is {im.size[0]}×{im.size[1]} pixels ({im.mode}); decoding "
                                 f"it would take {_gb(need)} of memory, more than invgui's limit of "
                                 f"{_gb(MAX_DECODE_BYTES)}; downscale it first (a JPEG of that size is "
                                 "decoded at reduced scale and fits)")
            if deep_alone:
                arr = _read_16bit_colour(path, None)
            if arr is None:
                im.load()                                  # decode now: truncated files fail here
                im = ImageOps.exif_transpose(im)  # type: ignore[assignment]  # an Image, no longer the file's
                if im.mode in ("P", "PA"):
                    im = im.convert("RGBA")  # type: ignore[assignment]  # an Image, no longer the file's
                elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                    im = im.convert("RGB")  # type: ignore[assignment]  # an Image, no longer the file's
                elif im.mode == "1":
                    im = im.convert("L")  # type: ignore[assignment]  # an Image, no longer the file's
                arr = np.asarray(im)
                if deep and arr.ndim == 3 and arr.dtype == np.uint8:
                    arr = _read_16bit_colour(path, arr)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file, or a format invgui cannot read "
                         "(every format Pillow opens is: PNG, JPEG, TIFF, BMP, WebP, GIF, PPM, …)") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: the image is too large to load safely ({e})") from None
    except MemoryError:
        raise ImageError(f"{path}: not enough memory to decode the image{header}") from None
    except OSError as e:
        if e.errno is not None:                    # the file system's word, not the codec's
            raise ImageError(path_problem(path, e)) from None
        raise ImageError(f"{path}: the file is damaged or truncated{header}: {e}") from None
    except (SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: the file is damaged or truncated{header}: {e}") from None
    assert arr is not None, "every branch above decodes or raises"
    if shrink and min_side and min(arr.shape[:2]) > min_side:
        arr = _shrink_to(arr, min_side)
    return arr


def _shrink_to(arr: np.ndarray, side: int) -> np.ndarray:
    """``arr`` (any dtype the decoder gives) resized so its shorter side is ``side``, by area
    averaging (OpenCV's INTER_AREA: antialiased, keeps 16-bit and the dtype)."""
    import cv2

    h, w = arr.shape[:2]
    f = side / min(h, w)
    size = (max(side, round(w * f)), max(side, round(h * f)))
    a = arr.astype(np.float64) if arr.dtype in (np.int32, np.uint32, np.int64) else arr   # Pillow's "I"
    out = cv2.resize(np.ascontiguousarray(a), size, interpolation=cv2.INTER_AREA)
    if out.ndim == 2 and arr.ndim == 3:
        out = out[..., None]                             # OpenCV drops a single channel axis
    return out.astype(arr.dtype, copy=False)


def _sixteen_bit(im, path: Path) -> bool:
    """Whether a PNG or TIFF stores more than 8 bits per sample (Pillow then hands out 8-bit colour),
    read from the header, so that the common 8-bit file is not decoded a second time."""
    if im.format == "PNG":
        with open(path, "rb") as f:
            head = f.read(25)
        return len(head) == 25 and head[12:16] == b"IHDR" and head[24] > 8
    if im.format == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(258, (8,))
        return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    return False


def _read_16bit_colour(path: Path, arr8: np.ndarray | None) -> np.ndarray | None:
    """Pillow reduces 16-bit colour PNG/TIFF to 8 bits; OpenCV keeps all 16, so use it for those.
    ``arr8``: Pillow's 8-bit pixels, returned when OpenCV cannot do better (None: not decoded yet)."""
    import cv2

    full = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if full is None or full.dtype != np.uint16 or full.ndim != 3 or full.shape[2] not in (3, 4) \
            or (arr8 is not None and full.shape[:2] != arr8.shape[:2]):
        return arr8
    order = [2, 1, 0, 3][: full.shape[2]]               # BGR(A) -> RGB(A)
    return full[..., order]


def image_batch(img: np.ndarray, size: int):
    """An H×W×3 image in [0, 1] as a 1×3×size×size torch batch (resized, centre-cropped)."""
    import torch

    return torch.from_numpy(resize_center_crop(img, size)).permute(2, 0, 1)[None]


PAD_GREY = 0.5      # the bars: mid grey, the colour σ-normalised optimisation starts around


def frame(img: np.ndarray, framing: str = "crop") -> np.ndarray:
    """``img`` as the method gets it: unchanged for "crop" (the centre square is cut at the input
    size), or padded to a square with :data:`PAD_GREY` bars, centred, for "fit"."""
    if framing not in FRAMINGS:
        raise ImageError(f"framing {framing!r}: use one of {', '.join(FRAMINGS)}")
    h, w = img.shape[:2]
    if framing == "crop" or h == w:
        return img
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    out = np.full((side, side, img.shape[2]), PAD_GREY, dtype=img.dtype)
    out[top:top + h, left:left + w] = img
    return out


def input_region(shape: tuple[int, ...], framing: str = "crop") -> dict:
    """The part of an image of ``shape`` (H×W…) that a method sees, for the records and the window:
    "crop": the centre square (what :func:`resize_center_crop` keeps), ``region`` = x, y, w, h in
    the image's pixels; "fit": all of it, ``padding`` = left, top, right, bottom bars in its pixels."""
    h, w = shape[:2]
    if framing == "fit":
        side = max(h, w)
        left, top = (side - w) // 2, (side - h) // 2
        return {"image_size": [w, h], "crop": "none", "framing": "fit", "region": [-left, -top, side, side],
                "padding": [left, top, side - w - left, side - h - top]}
    side = min(h, w)
    return {"image_size": [w, h], "crop": "centre", "framing": "crop",
            "region": [(w - side) // 2, (h - side) // 2, side, side]}


def source_label(source: str) -> str:
    """How the window names an image source: a file by its name, a bundled sample as sample:NAME."""
    return source if source.startswith("sample:") else Path(source).name


def region_words(shape: tuple[int, ...], framing: str = "crop") -> str:
    """"; its centre 300×300 is used" (crop) or "; padded to 400×400 with grey bars" (fit) for a
    non-square image; "" for a square one."""
    h, w = shape[:2]
    if h == w:
        return ""
    if framing == "fit":
        return f"; padded to {max(h, w)}×{max(h, w)} with grey bars"
    return f"; its centre {min(h, w)}×{min(h, w)} is used"


def resize_center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is ``size`` (antialiased), then crop the centre ``size×size``."""
    import torch
    import torch.nn.functional as F

    h, w = img.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    if (nh, nw) != (h, w):
        t = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=(nh < h), align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    t = t[..., top:top + size, left:left + size].clamp(0, 1)
    return np.ascontiguousarray(t[0].permute(1, 2, 0).numpy(), dtype=np.float32)
