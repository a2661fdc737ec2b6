"""Up-convolutional decoders of Dosovitskiy & Brox (paper 001, supplementary Tables 3–7).

Built from the representation's output shape and stride, so one definition serves every
representation and input size:

* ``two-stream`` (HOG, LBP; dense SIFT too): stream A compresses spatially (strided 5×5/3×3
  convolutions, then up-convolutions back) to catch global brightness, stream B keeps the
  resolution; both are concatenated ("J"), convolved, and up-convolved to the image (Tables 3, 5);
* ``sift`` (sparse SIFT on its 4-px grid): a strided encoder down to 1/16, then up-convolutions
  (Table 4);
* ``conv`` (a convolutional CNN layer): three 3×3 convolutions, then 5×5 up-convolutions (Table 6);
* ``fc`` (a vector layer): three fully connected layers, a 4×4 reshape, five 5×5 up-convolutions
  (Table 7).

Leaky ReLU 0.2 after every layer but the last; up-convolution = transposed convolution with
stride 2 (4×4 for the shallow features, 5×5 for CNN layers), exactly doubling the size.
Channel counts are the paper's times ``width`` (1.0 = the paper's networks; smaller keeps CPU
training feasible).  The decoders are fully convolutional except ``fc``: their output is
``stride`` × the feature map and is resized to the requested image size when the stride is not
a power of two or the input size not a multiple of it.  The image is predicted around mid-gray
(output + 0.5, compared with the [0, 1] RGB target).  A per-channel input scale (``scale``,
estimated from training features) makes features of any magnitude (LBP counts, CNN activations)
start near unit size.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import InvguiError
from ...layout import Layout, plain
from ..decoder_params import WIDTH_MAX, WIDTH_MIN  # noqa: F401  (checkpoint.py reads them here)

KINDS = ("two-stream", "sift", "conv", "fc")
SLOPE = 0.2


def _c(n: float, width: float) -> int:
    return max(4, int(round(n * width)))


def _act() -> nn.Module:
    return nn.LeakyReLU(SLOPE, inplace=True)


def conv(cin: int, cout: int, k: int, s: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, s, padding=k // 2), _act()]


def upconv(cin: int, cout: int, k: int = 4, last: bool = False) -> list[nn.Module]:
    layer = (nn.ConvTranspose2d(cin, cout, 4, 2, padding=1) if k == 4
             else nn.ConvTranspose2d(cin, cout, 5, 2, padding=2, output_padding=1))
    return [layer] if last else [layer, _act()]


def n_up(stride: int) -> int:
    """Up-convolutions (×2 each) to go from a feature map of ``stride`` back to pixels."""
    return max(0, math.ceil(math.log2(max(stride, 1)) - 1e-9))


def up_chain(cin: int, hidden: tuple[int, ...], k: int, width: float, ksize: int) -> list[nn.Module]:
    """``k`` up-convolutions from ``cin`` channels to 3: the hidden widths are the last k − 1 of
    ``hidden`` (the paper's, e.g. 128, 64, 32), padded in front with its first value."""
    if k == 0:
        return [nn.Conv2d(cin, 3, 3, padding=1)]
    padded = [hidden[0]] * max(0, k - 1 - len(hidden)) + list(hidden)
    mids = padded[len(padded) - (k - 1):] if k > 1 else []
    chans = [cin] + [_c(v, width) for v in mids] + [3]
    layers: list[nn.Module] = []
    for i in range(k):
        layers += upconv(chans[i], chans[i + 1], k=ksize, last=i == k - 1)
    return layers


def _fit(t: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Crop (or, when smaller, bilinearly resize) a map to ``hw`` so streams and outputs line up."""
    if tuple(t.shape[-2:]) == tuple(hw):
        return t
    if t.shape[-2] >= hw[0] and t.shape[-1] >= hw[1]:
        return t[..., :hw[0], :hw[1]]
    return F.interpolate(t, size=hw, mode="bilinear", align_corners=False)


class Decoder(nn.Module):
    scale: torch.Tensor             # a buffer: 1 / RMS of each input channel
    """Base: reads the layer's layout, scales the input per channel, runs the network, fits the
    output to ``out_size``.

    The networks are built on the layout's map (``core.layout``): channels-last features are
    permuted to C×H×W, a transformer's patch tokens reshaped to their grid, and its prefix tokens
    (class, distillation, registers) flattened into one global vector that a linear layer turns
    into a bias on every cell — as the fully connected stream of paper 001 carries what is not
    spatial.  ``in_shape`` is the layer's own output shape (what the checkpoint records)."""

    def __init__(self, kind: str, in_shape: tuple[int, ...], stride: int, width: float):
        super().__init__()
        self.kind, self.in_shape, self.stride, self.width = kind, tuple(in_shape), int(stride), float(width)
        self.body_shape = self.in_shape
        self.layout = plain(self.in_shape)
        self.prefix: nn.Linear | None = None
        self.register_buffer("scale", torch.ones(in_shape[0]))

    def on_layout(self, layout: Layout) -> Decoder:
        """Take features laid out as ``layout`` (the network was built on its map)."""
        self.layout, self.in_shape = layout, layout.shape
        if layout.kind == "tokens" and layout.n_prefix:
            c = layout.channels
            self.prefix = nn.Linear(layout.n_prefix * c, c)
        return self

    def _map(self, phi: torch.Tensor) -> torch.Tensor:
        return self.layout.spatial(phi).contiguous() if self.layout.kind in ("hwc", "tokens") else phi

    def set_scale(self, feats: torch.Tensor) -> None:
        """1 / RMS of each input channel over a batch of features (N×…), so inputs start near 1."""
        feats = self._map(feats)
        dims = [0] + list(range(2, feats.dim()))
        rms = feats.float().pow(2).mean(dims).sqrt()
        positive = rms[rms > 0]
        floor = float(positive.median()) * 1e-2 if len(positive) else 1.0
        self.scale.copy_(1.0 / rms.clamp_min(max(floor, 1e-8)))

    def _scaled(self, phi: torch.Tensor) -> torch.Tensor:
        """The layer's features as the network's map, scaled per channel (the critic's condition)."""
        phi = self._map(phi)
        shape = (1, -1) + (1,) * (phi.dim() - 2)
        return phi * self.scale.view(shape).to(phi.dtype)

    def _input(self, phi: torch.Tensor) -> torch.Tensor:
        x = self._scaled(phi)
        if self.prefix is not None:
            tokens = self.layout.prefix_tokens(phi) * self.scale.to(phi.dtype)
            x = x + self.prefix(tokens.flatten(1))[:, :, None, None]
        return x

    def body(self, phi: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, phi: torch.Tensor, out_size: tuple[int, int] | None = None) -> torch.Tensor:
        y = self.body(self._input(phi))
        if out_size is not None:
            y = _fit(y, out_size) if y.shape[-2] >= out_size[0] else \
                F.interpolate(y, size=out_size, mode="bilinear", align_corners=False)
        return y + 0.5


class TwoStream(Decoder):
    """Tables 3 (HOG) and 5 (LBP)."""

    def __init__(self, in_shape, stride, width):
        super().__init__("two-stream", in_shape, stride, width)
        c = in_shape[0]
        w = width
        third = 2 if stride <= 8 else 1                  # HOG: three stride-2 steps; LBP: two, then s1
        self.a_down = nn.Sequential(*conv(c, _c(256, w), 5, 2), *conv(_c(256, w), _c(512, w), 5, 2),
                                    *conv(_c(512, w), _c(1024, w), 3, third))
        ups = [_c(512, w), _c(256, w), _c(128, w)][:2 if third == 1 else 3]
        layers, cin = [], _c(1024, w)
        for cout in ups:
            layers += upconv(cin, cout)
            cin = cout
        self.a_up = nn.Sequential(*layers)
        self.b = nn.Sequential(*conv(c, _c(128, w), 5), *conv(_c(128, w), _c(128, w), 3))
        self.j = nn.Sequential(*conv(cin + _c(128, w), _c(256, w), 3), *conv(_c(256, w), _c(128, w), 3))
        self.up = nn.Sequential(*up_chain(_c(128, w), (128, 64, 32), n_up(stride), w, 4))

    def body(self, phi):
        hw = phi.shape[-2:]
        a = _fit(self.a_up(self.a_down(phi)), hw)
        j = self.j(torch.cat([a, self.b(phi)], 1))
        return self.up(j)


class SIFTNet(Decoder):
    """Table 4 (sparse SIFT on a grid)."""

    def __init__(self, in_shape, stride, width):
        super().__init__("sift", in_shape, stride, width)
        w, c = width, in_shape[0]
        self.enc = nn.Sequential(*conv(c, _c(256, w), 5, 2), *conv(_c(256, w), _c(512, w), 3, 2),
                                 *conv(_c(512, w), _c(1024, w), 3, 2), *conv(_c(1024, w), _c(2048, w), 3, 2),
                                 *conv(_c(2048, w), _c(2048, w), 3), *conv(_c(2048, w), _c(1024, w), 3))
        self.dec = nn.Sequential(*up_chain(_c(1024, w), (512, 256, 128, 64, 32), 4 + n_up(stride), w, 4))

    def body(self, phi):
        hw = phi.shape[-2:]
        y = self.dec(self.enc(phi))
        return _fit(y, (hw[0] * 2 ** n_up(self.stride), hw[1] * 2 ** n_up(self.stride)))


class ConvNet(Decoder):
    """Table 6 (a convolutional layer): three convolutions, then 5×5 up-convolutions."""

    def __init__(self, in_shape, stride, width):
        super().__init__("conv", in_shape, stride, width)
        w, c = width, in_shape[0]
        mid = _c(256, w)
        self.convs = nn.Sequential(*conv(c, mid, 3), *conv(mid, mid, 3), *conv(mid, mid, 3))
        self.up = nn.Sequential(*up_chain(mid, (256, 128, 64, 32), n_up(stride), w, 5))

    def body(self, phi):
        return self.up(self.convs(phi))


class FCNet(Decoder):
    """Table 7 (a vector layer): three FC layers, reshape to 4×4, five 5×5 up-convolutions."""

    def __init__(self, in_shape, stride, width):
        super().__init__("fc", in_shape, stride, width)
        w = width
        # math.prod, not a tensor: checkpoints are checked by building the net on the meta device,
        # where .item() fails — an fc decoder could be trained but not loaded (found by issue 37's test)
        n = math.prod(in_shape)
        hid = _c(4096, w)
        self.base = _c(256, w)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(n, hid), _act(), nn.Linear(hid, hid), _act(),
                                nn.Linear(hid, self.base * 16), _act())
        chans = [self.base, _c(256, w), _c(128, w), _c(64, w), _c(32, w), 3]
        layers = []
        for i in range(5):
            layers += upconv(chans[i], chans[i + 1], k=5, last=i == 4)
        self.up = nn.Sequential(*layers)

    def body(self, phi):
        return self.up(self.fc(phi).view(-1, self.base, 4, 4))


NETS = {"two-stream": TwoStream, "sift": SIFTNet, "conv": ConvNet, "fc": FCNet}


def kind_for(family: str, layout: Layout | tuple[int, ...]) -> str:
    """The architecture for a representation family and a layer's layout (or shape): a map gets
    the family's convolutional decoder, anything else (a vector, a layout not read) the fully
    connected one, which takes it as a whole."""
    lay = layout if isinstance(layout, Layout) else plain(tuple(layout))
    if lay.grid is None:
        return "fc"
    return {"hog": "two-stream", "lbp": "two-stream", "dsift": "two-stream", "sift": "sift"}.get(family, "conv")


def build(kind: str, in_shape: tuple[int, ...], stride: int, width: float, layout: Layout | None = None) -> Decoder:
    """The decoder ``kind`` for features of ``in_shape``; ``layout`` (C×H×W when not given) says
    how they are laid out: the network is built on its map and takes the layer's own output."""
    if kind not in NETS:
        raise InvguiError(f"unknown decoder architecture {kind!r}; one of {', '.join(KINDS)}")
    lay = layout if layout is not None else plain(tuple(in_shape))
    if lay.shape != tuple(in_shape):
        raise InvguiError(f"layout {lay.text()} does not describe features of shape {tuple(in_shape)}")
    body = lay.spatial_shape if kind != "fc" else tuple(in_shape)
    net = NETS[kind](tuple(body), int(stride), float(width))
    return net.on_layout(lay) if kind != "fc" else net


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class Discriminator(nn.Module):
    """The adversarial term's critic (paper 001, appendix A: a prior learned as in GANs): says whether
    an image is a photo or a reconstruction, *given the features* it should have.

    A projection discriminator (Miyato & Koyama 2018): four strided 4×4 convolutions of the image
    and a global sum give a vector h; the features, pooled to at most 4×4 and flattened, are
    embedded as e; the score is w·h + e·h, so the critic judges the image and its agreement with
    the features at once.  Spectral normalisation on every layer (Miyato et al. 2018) bounds its
    Lipschitz constant — with the hinge loss, the settings known to train stably.  Fully
    convolutional: any crop of 16 px or more.  Takes images in [0, 1] and features as the
    decoder scales them.
    """

    def __init__(self, in_shape: tuple[int, ...], width: float):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        chans = [3] + [_c(n, width) for n in (64, 128, 256, 512)]
        layers: list[nn.Module] = []
        for a, b in zip(chans, chans[1:], strict=False):    # neighbours: one pair fewer
            layers += [sn(nn.Conv2d(a, b, 4, 2, padding=1)), _act()]
        self.image = nn.Sequential(*layers)
        self.pooled: tuple[int, int] = (min(4, in_shape[1]), min(4, in_shape[-1]))
        n_in = in_shape[0] * int(math.prod(self.pooled))
        self.embed = sn(nn.Linear(n_in, chans[-1]))
        self.out = sn(nn.Linear(chans[-1], 1))

    def forward(self, img: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        h = self.image(img * 2 - 1).sum((2, 3))
        if phi.dim() > 2:
            phi = F.adaptive_avg_pool2d(phi, self.pooled) if phi.dim() == 4 else phi   # type: ignore[arg-type]
        e = self.embed(phi.flatten(1))
        return self.out(h).squeeze(1) + (e * h).sum(1)
