import numpy as np
import pytest
from PIL import Image

from invgui.core.files import save_png
from invgui.core.images import ImageError, load_image, resize_center_crop


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "rocket", "camera"])
def test_samples_load_offline(name):
    img = load_image(f"sample:{name}")
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.float32
    assert img.min() >= 0.0 and img.max() <= 1.0


@pytest.mark.parametrize("name", ["astronaut", "cat", "rocket", "camera", "immunohistochemistry", "horse"])
def test_samples_read_directly_are_what_skimage_data_gives(name):
    import skimage.data

    from invgui.core.images import to_float_rgb

    assert np.array_equal(load_image(f"sample:{name}"), to_float_rgb(getattr(skimage.data, name)()))


def test_unknown_sample():
    with pytest.raises(ImageError, match="sample:nope.*astronaut"):
        load_image("sample:nope")


@pytest.mark.parametrize("ext", ["png", "jpg", "tif", "bmp"])
def test_formats_roundtrip(tmp_path, ext):
    yy, xx = np.mgrid[0:20, 0:30]
    arr = np.stack([xx * 8, yy * 12, (xx + yy) * 4], -1).astype(np.uint8)   # smooth, so JPEG keeps it
    p = tmp_path / f"x.{ext}"
    Image.fromarray(arr).save(p)
    img = load_image(p)
    assert img.shape == (20, 30, 3)
    tol = 20 if ext == "jpg" else 1     # JPEG is lossy (chroma subsampling)
    assert np.abs(img * 255 - arr).max() <= tol


def test_grayscale_replicated(tmp_path):
    p = tmp_path / "g.png"
    Image.fromarray(np.full((20, 20), 128, np.uint8)).save(p)
    img = load_image(p)
    assert img.shape == (20, 20, 3)
    assert np.allclose(img, 128 / 255)


def test_rgba_composited_over_white(tmp_path):
    arr = np.zeros((20, 20, 4), np.uint8)
    arr[..., 0] = 255          # red
    arr[:10, :, 3] = 255       # top half opaque, bottom transparent
    p = tmp_path / "a.png"
    Image.fromarray(arr, "RGBA").save(p)
    img = load_image(p)
    assert np.allclose(img[0, 0], [1, 0, 0])
    assert np.allclose(img[-1, -1], [1, 1, 1])


def test_palette(tmp_path):
    im = Image.new("P", (20, 20))
    im.putpalette([0, 0, 255] * 256)
    p = tmp_path / "p.png"
    im.save(p)
    assert np.allclose(load_image(p)[5, 5], [0, 0, 1])


def test_16bit_gray_and_colour(tmp_path):
    import cv2

    g = np.full((20, 20), 65535 // 4, np.uint16)
    Image.fromarray(g).save(tmp_path / "g16.png")
    assert np.allclose(load_image(tmp_path / "g16.png"), 0.25, atol=1e-4)
    c = np.zeros((20, 20, 3), np.uint16)
    c[..., 2] = 1000                       # BGR order for OpenCV: red channel = 1000/65535
    cv2.imwrite(str(tmp_path / "c16.png"), c)
    img = load_image(tmp_path / "c16.png")
    assert np.allclose(img[0, 0], [1000 / 65535, 0, 0], atol=1e-6)   # precision beyond 8 bits kept
    cv2.imwrite(str(tmp_path / "c16.tif"), c)                          # the header says 16 bits: TIFF too
    assert np.allclose(load_image(tmp_path / "c16.tif")[0, 0], [1000 / 65535, 0, 0], atol=1e-6)


def test_truncated_file_names_file_and_reason(tmp_path):
    p = tmp_path / "cut.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 7).save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.png.*(damaged|truncated)"):
        load_image(p)


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("hello")
    with pytest.raises(ImageError, match=r"notes\.png: not an image"):
        load_image(p)


def test_missing_tiny_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(ImageError, match=r"tiny\.png.*4×4"):
        load_image(tmp_path / "tiny.png")


def test_save_png_roundtrip_and_unwritable(tmp_path):
    img = np.random.default_rng(1).random((17, 23, 3)).astype(np.float32)
    p = save_png(tmp_path / "o.png", img)
    back = load_image(p)
    assert np.abs(back - img).max() <= 1 / 255 + 1e-6
    with pytest.raises(OSError, match="does not exist"):
        save_png(tmp_path / "no" / "such" / "o.png", img)
    assert [f.name for f in tmp_path.iterdir()] == ["o.png"]       # no temporary left behind


def test_resize_center_crop_shape():
    img = np.random.default_rng(2).random((300, 451, 3)).astype(np.float32)
    out = resize_center_crop(img, 96)
    assert out.shape == (96, 96, 3)
    small = resize_center_crop(np.ones((20, 30, 3), np.float32), 64)
    assert small.shape == (64, 64, 3) and np.allclose(small, 1)


def test_huge_image_refused_before_decoding(tmp_path, monkeypatch):
    import invgui.core.images as images

    Image.fromarray(np.zeros((100, 200, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 100 * 199)
    with pytest.raises(ImageError, match=r"big\.png.*200×100.*downscale"):
        load_image(tmp_path / "big.png")


def test_uint8_loading_follows_the_same_rules(tmp_path):
    # The decoder's training path reads files as uint8 directly; it must give what load_image gives.
    import cv2

    from invgui.core.images import load_image_uint8, to_uint8

    rng = np.random.default_rng(0)
    rgb = (rng.random((20, 24, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(tmp_path / "rgba.png")
    cv2.imwrite(str(tmp_path / "c16.png"), (rng.random((20, 24, 3)) * 65535).astype(np.uint16))
    for name in ("rgb.png", "rgb.jpg", "gray.png", "rgba.png", "c16.png"):
        got = load_image_uint8(tmp_path / name)
        assert got.dtype == np.uint8 and got.shape == (20, 24, 3)
        assert np.array_equal(got, to_uint8(load_image(tmp_path / name))), name


# --- Files that are not images, or would cost more than they show (issue 26 §2) -------------------

def _load_in_thread(path, seconds=20.0):
    """load_image(path) in a thread: a FIFO opened for reading blocks forever, so a hang must fail
    the test instead of the suite."""
    import threading

    out: dict = {}

    def go():
        try:
            out["value"] = load_image(path)
        except Exception as e:  # noqa: BLE001 - handed to the test
            out["error"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"load_image({path}) hung"
    return out


def test_fifo_device_and_socket_are_refused_without_opening(tmp_path):
    import os
    import socket

    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    out = _load_in_thread(fifo)
    assert isinstance(out.get("error"), ImageError) and "FIFO" in str(out["error"])
    out = _load_in_thread("/dev/zero")                 # endless: decoding it would never end either
    assert isinstance(out.get("error"), ImageError) and "character device" in str(out["error"])
    sock_path = tmp_path / "s.png"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        out = _load_in_thread(sock_path)
    assert isinstance(out.get("error"), ImageError) and "socket" in str(out["error"])


def test_unreadable_and_overlong_names_say_what_is_wrong(tmp_path, monkeypatch):
    import os

    import PIL.Image

    p = tmp_path / "locked.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(p)
    # The suite runs as root in CI, where chmod 000 still reads: the refusals are simulated.
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(ImageError, match=r"locked\.png: cannot read \(permission denied\)"):
        load_image(p)
    monkeypatch.undo()

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr(PIL.Image, "open", denied)
    with pytest.raises(ImageError, match=r"cannot read \(permission denied\)") as e:
        load_image(p)
    assert "damaged" not in str(e.value)
    monkeypatch.undo()
    with pytest.raises(ImageError, match="file name is too long.*rename it or give a shorter path") as e:
        load_image(tmp_path / ("a" * 300 + ".png"))
    assert "Errno" not in str(e.value)


def test_big_images_are_decoded_reduced_and_within_a_memory_bound(tmp_path, monkeypatch):
    import cv2

    import invgui.core.images as images

    yy, xx = np.mgrid[0:800, 0:1600]
    smooth = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "wide.jpg", quality=95)
    monkeypatch.setattr(images, "LOAD_SIDE", 100)
    # Decoded whole, the JPEG takes 800·1600·(4 + 3) bytes; at the 1/4 scale draft mode gives
    # (200×400) 16 times less: a bound between the two admits it only if it is decoded reduced.
    monkeypatch.setattr(images, "MAX_DECODE_BYTES", 800 * 1600 * 7 // 4)
    img = load_image(tmp_path / "wide.jpg", min_side=100)
    assert img.shape == (100, 200, 3)                  # then resized to the shorter side asked for
    # 16-bit colour PNG: no reduced decoding, so the bound applies to the whole image, and says so.
    deep = (np.dstack([xx, yy, xx + yy]) * 40).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    with pytest.raises(ImageError, match=r"deep\.png: the image is 1600×800.*would take.*MB of memory.*downscale"):
        load_image(tmp_path / "deep.png", min_side=100)
    monkeypatch.setattr(images, "MAX_DECODE_BYTES", 1 << 30)
    img = load_image(tmp_path / "deep.png", min_side=100)
    assert img.shape == (100, 200, 3)
    # Area averaging keeps the precision beyond 8 bits: the corner block's mean, not a rounded value.
    expect = deep[:8, :8].reshape(-1, 3)[:, ::-1].astype(np.float64).mean(0) / 65535
    assert np.abs(img[0, 0] - expect).max() < 1e-5
    assert np.unique(np.round(img * 255) - img * 255).size > 1


def test_a_jpeg_header_that_claims_more_than_the_file_holds_is_refused(tmp_path):
    import io

    b = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3)).astype(np.uint8)).save(b, "JPEG")
    data = bytearray(b.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (13370).to_bytes(2, "big") * 2            # height, width
    (tmp_path / "liar.jpg").write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"liar\.jpg: the header says 13370×13370 pixels.*damaged or truncated"):
        load_image(tmp_path / "liar.jpg")
    # A plain white JPEG, as small as JPEG gets, is not refused.
    Image.fromarray(np.full((512, 512, 3), 255, np.uint8)).save(tmp_path / "white.jpg", quality=10)
    assert load_image(tmp_path / "white.jpg").shape == (512, 512, 3)
