"""What the optimisation changes to make its image: the image's pixels (Mahendran & Vedaldi), a
decorrelated Fourier spectrum (Olah, Mordvintsev & Schubert, "Feature Visualization", Distill
2017 — Lucid's and Lucent's ``fft=True, decorrelate=True``), that spectrum's phase alone with its
magnitude fixed to natural images' (MACO, Fel et al., NeurIPS 2023), or the weights of a randomly
initialised encoder-decoder fed fixed noise (Deep Image Prior, Ulyanov, Vedaldi & Lempitsky, CVPR
2018).

Each is a :class:`Parameterisation`: ``variable`` (the tensor the optimiser updates, one row per
restart of every item) and ``render(variable)`` → the image in σ units, on which the α-norm,
TV^β, the colour-norm bound and the jitter act as for pixels.  Written here rather than taken from
Lucent, whose image functions return closures over their own optimiser state and cannot run in
invgui's one-tensor step (:mod:`.stepper`, captured as one CUDA graph); the DIP generator is a
small module called through ``torch.func`` on one flat weight vector per restart, so K items × R
restarts are R·K independent generators in one batched call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvguiError
from .optimize_params import OptimizeParams

# The square root of ImageNet's colour covariance (RGB), as Olah et al. published it with Lucid; its
# columns scaled so the largest has norm 1.  Decorrelating with it gives each colour component of
# the spectrum a comparable scale.
_COLOUR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
COLOUR = torch.from_numpy(_COLOUR_SQRT / np.linalg.norm(_COLOUR_SQRT, axis=0).max())
SPECTRUM_SCALE = 4.0        # the rendered spectrum is divided by this before the sigmoid (as in Lucid)
NOISE_SD = 0.01             # the random start spectrum's standard deviation (as in Lucid), × init_scale
EDGE = 1e-4                 # an image's values are kept in [EDGE, 1 − EDGE] before the logit
# Photos the natural magnitude (MACO) is averaged over: bundled, and none of the held-out photos the
# benchmarks evaluate on (chelsea / cat, coffee, rocket).
MAGNITUDE_PHOTOS = ("astronaut", "camera", "coins", "moon")


def perturbation(field: torch.Tensor, it: torch.Tensor) -> torch.Tensor:
    """Zero-mean, unit-variance noise for step ``it`` (a device tensor): a hash of a fixed uniform
    field and the step — the fractional part of a large multiple of a sine, as shaders make noise —
    mapped to a uniform distribution of variance 1.  Written by hand: torch's random streams are
    state the step would change, which a CUDA graph and its fallback cannot replay exactly."""
    phase = field * 12.9898 + (it.to(field.dtype) % 4096) * 78.233
    uniform = torch.frac(torch.sin(phase) * 43758.5453).abs()
    return (uniform - 0.5) * math.sqrt(12.0)


class Parameterisation:
    """Pixels: the variable is the image itself (σ units)."""

    name = "pixel"
    renders = False             # False: the variable is the image (the step clamps it in place)

    def __init__(self, u0: torch.Tensor):
        self.variable = u0

    @classmethod
    def start(cls, p: OptimizeParams, u0: torch.Tensor, to_rgb: Callable, from_rgb: Callable, *, items: int,
              image_start: bool) -> Parameterisation:
        """The variable for a run of parameters ``p`` from its start images ``u0`` (``items`` × R
        rows, each item's restarts drawn from ``p.seed``); ``image_start``: ``u0`` is an image to
        start from (a spectrum or a generator fitted to it), not noise."""
        return cls(u0)

    def render(self, v: torch.Tensor, train: bool = False, it: torch.Tensor | None = None) -> torch.Tensor:
        """The image (σ units) of variable ``v``; ``train``: for step ``it`` (a perturbation may depend on it)."""
        return v

    def image(self) -> torch.Tensor:
        """The current image (σ units), without gradients."""
        with torch.no_grad():
            return self.render(self.variable).detach()


class Fourier(Parameterisation):
    """A decorrelated-colour spectrum scaled by 1/f^decay, mapped to pixels by an inverse real FFT
    and a sigmoid; ``natural`` (MACO): only the phase is optimised, the magnitude is the natural
    photos' average."""

    name = "fourier"
    renders = True

    @classmethod
    def start(cls, p: OptimizeParams, u0: torch.Tensor, to_rgb: Callable, from_rgb: Callable, *, items: int,
              image_start: bool) -> Parameterisation:
        rows, c, h, w = u0.shape
        noise = None
        if not image_start:
            one = torch.randn((p.restarts, c, h, w // 2 + 1, 2), generator=torch.Generator().manual_seed(p.seed))
            noise = (one * (NOISE_SD * p.init_scale)).repeat(items, 1, 1, 1, 1)
        return cls(u0, to_rgb, from_rgb, decay=p.decay, natural=p.magnitude == "natural", noise=noise, clamp=p.clamp)

    def __init__(self, u0: torch.Tensor, to_rgb: Callable, from_rgb: Callable, *, decay: float, natural: bool,
                 noise: torch.Tensor | None, clamp: float):
        rows, c, h, w = u0.shape
        self.size, self.channels, self.natural, self.clamp = (h, w), c, natural, clamp
        self.to_rgb_, self.from_rgb_ = to_rgb, from_rgb
        device = u0.device
        fy = torch.fft.fftfreq(h, device=device).view(-1, 1)
        fx = torch.fft.rfftfreq(w, device=device).view(1, -1)
        freq = torch.sqrt(fy * fy + fx * fx)
        self.scale = 1.0 / freq.clamp_min(1.0 / max(h, w)) ** decay          # H × (W/2+1)
        self.mix = COLOUR.to(device) if c == 3 else None
        self.magnitude = natural_magnitude(h, w, c).to(device) if natural else None
        if noise is not None:                         # a random start: a small random spectrum
            spec = noise.to(device)
            self.variable = torch.atan2(spec[..., 1], spec[..., 0]) if natural else spec
        else:                                         # an image start: that image's own spectrum
            self.variable = self.from_image(u0)

    def _rgb_from_logits(self, y: torch.Tensor) -> torch.Tensor:
        if self.mix is not None:
            y = torch.einsum("nchw,dc->ndhw", y, self.mix)
        return torch.sigmoid(y)

    def render(self, v: torch.Tensor, train: bool = False, it: torch.Tensor | None = None) -> torch.Tensor:
        if self.magnitude is not None:                     # MACO: v is the phase
            spec = torch.polar(self.magnitude.expand_as(v), v)
        else:
            spec = torch.view_as_complex(v) * self.scale
        y = torch.fft.irfft2(spec, s=self.size, norm="ortho") / SPECTRUM_SCALE
        u = self.from_rgb_(self._rgb_from_logits(y))[:, :self.channels]
        return _bounded(u, self.clamp)

    def from_image(self, u: torch.Tensor) -> torch.Tensor:
        """The variable that renders image ``u`` (σ units): its spectrum (its phase, for MACO)."""
        rgb = self.to_rgb_(u)[:, :self.channels].clamp(EDGE, 1 - EDGE)
        y = torch.logit(rgb)
        if self.mix is not None:
            y = torch.einsum("nchw,dc->ndhw", y, torch.linalg.inv(self.mix))
        spec = torch.fft.rfft2(y * SPECTRUM_SCALE, norm="ortho")
        if self.natural:
            return torch.angle(spec).contiguous()
        return torch.view_as_real(spec / self.scale).contiguous()


def _bounded(u: torch.Tensor, clamp: float) -> torch.Tensor:
    """Every pixel's colour norm bounded by ``clamp`` σ (0: not), differentiably (a rendered image
    cannot be clamped in place as pixels are)."""
    if clamp <= 0:
        return u
    norm = u.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return u * torch.clamp(clamp / norm, max=1.0)


@lru_cache(maxsize=8)
def natural_magnitude(h: int, w: int, channels: int) -> torch.Tensor:
    """The average magnitude spectrum of natural photos (``MAGNITUDE_PHOTOS``) in the Fourier
    parameterisation's space (decorrelated logits, × SPECTRUM_SCALE, orthonormal rFFT), averaged
    over rings of equal frequency — so it keeps the 1/f fall-off and each colour component's level
    but no photo's own orientations: channels × H × (W/2+1)."""
    from ..images import load_image, resize_center_crop

    ys = []
    for name in MAGNITUDE_PHOTOS:
        img = resize_center_crop(load_image(f"sample:{name}"), min(h, w))
        rgb = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].clamp(EDGE, 1 - EDGE)
        if channels == 1:
            rgb = rgb.mean(1, keepdim=True)
        y = torch.logit(rgb)
        if channels == 3:
            y = torch.einsum("nchw,dc->ndhw", y, torch.linalg.inv(COLOUR))
        ys.append(torch.fft.rfft2(F.interpolate(y, size=(h, w), mode="bilinear") * SPECTRUM_SCALE,
                                  norm="ortho").abs())
    mag = torch.cat(ys).mean(0)                                           # C × H × (W/2+1)
    fy = torch.fft.fftfreq(h).view(-1, 1)
    fx = torch.fft.rfftfreq(w).view(1, -1)
    ring = torch.round(torch.sqrt(fy * fy + fx * fx) * max(h, w)).long()   # ring index per frequency
    n = int(ring.max()) + 1
    counts = torch.zeros(n).index_add_(0, ring.flatten(), torch.ones(ring.numel()))
    out = torch.empty_like(mag)
    for c in range(mag.shape[0]):
        sums = torch.zeros(n).index_add_(0, ring.flatten(), mag[c].flatten())
        out[c] = (sums / counts.clamp_min(1))[ring]
    return out


class Generator(nn.Module):
    """Deep Image Prior's encoder-decoder with skip connections ("skip" in their code), smaller:
    ``depth`` levels of a stride-2 and a plain 3×3 convolution of ``width`` channels down, a 1×1
    skip of 4 channels from each level's input, bilinear upsampling to the skip's exact size (so
    any input side works) and a 3×3 + 1×1 convolution up, LeakyReLU 0.2, a sigmoid at the end.
    No batch normalisation: every restart's generator is independent of the others in the batch."""

    def __init__(self, cin: int, width: int, depth: int, cout: int, skip: int = 4):
        super().__init__()
        act = nn.LeakyReLU(0.2)
        self.down, self.skip, self.up = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        c = cin
        for _ in range(depth):
            self.skip.append(nn.Sequential(nn.Conv2d(c, skip, 1), act))
            self.down.append(nn.Sequential(nn.Conv2d(c, width, 3, 2, 1), act, nn.Conv2d(width, width, 3, 1, 1), act))
            c = width
        for _ in range(depth):
            self.up.append(nn.Sequential(nn.Conv2d(width + skip, width, 3, 1, 1), act, nn.Conv2d(width, width, 1),
                                         act))
        self.out = nn.Conv2d(width, cout, 1)
        # He initialisation for LeakyReLU 0.2, biases zero: PyTorch's default shrinks the signal by
        # about √3 a convolution, so through the 17 of depth 4 the output was the sigmoid of almost a
        # constant (std 0.007 at 224 px): Adam then moved the mean colour first and the sigmoid
        # saturated — the dip preset at 224 px ended as one flat colour (representation error 1.251 →
        # 1.341).  DIP's own network keeps the scale with batch normalisation, which would tie the
        # restarts of a batch together; this init keeps it at the start without that.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]  # every conv here has a bias

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        skips, x = [], z
        for skip, down in zip(self.skip, self.down, strict=True):
            skips.append(skip(x))
            x = down(x)
        for s, up in zip(reversed(skips), reversed(self.up), strict=True):
            x = F.interpolate(x, size=s.shape[-2:], mode="bilinear", align_corners=False)
            x = up(torch.cat([x, s], 1))
        return torch.sigmoid(self.out(x))


DIP_INPUT_CHANNELS = 32          # DIP's input: 32 channels of uniform noise × 0.1
DIP_FIT_STEPS = 100              # an image start: the generator is first fitted to it (Adam, MSE)
DIP_FIT_LR = 3e-3                # measured at 64 px, width 32, depth 4: 100 steps at 3e-3 leave a mean
                                 # error of 0.09 per pixel; at 1e-2 the sigmoid saturates (0.30, no fit)


class DeepImagePrior(Parameterisation):
    """Each restart's image is a generator's output for its own fixed noise; the variable is the
    generators' weights, one flat row per restart.  The R generators run as one network of grouped
    convolutions (group r = restart r): one sequence of kernels whatever R, as a CUDA graph wants.
    On the CPU, grouped convolutions are slower than separate ones — measured on the 2-core CPU at
    96 px, forward+backward of 4 generators: 0.143 s grouped, 0.131 s through ``torch.func.vmap``,
    0.092 s one after another (1 generator: 0.032 / 0.041 / 0.037 s) — so there each restart's
    generator runs on its own."""

    name = "dip"
    renders = True

    @classmethod
    def start(cls, p: OptimizeParams, u0: torch.Tensor, to_rgb: Callable, from_rgb: Callable, *, items: int,
              image_start: bool) -> Parameterisation:
        return cls(u0, to_rgb, from_rgb, width=p.dip_width, depth=p.dip_depth, input_noise=p.dip_noise, seed=p.seed,
                   restarts=p.restarts, fit_start=image_start, clamp=p.clamp)

    def __init__(self, u0: torch.Tensor, to_rgb: Callable, from_rgb: Callable, *, width: int, depth: int,
                 input_noise: float, seed: int, restarts: int, fit_start: bool, clamp: float):
        rows, c, h, w = u0.shape
        if min(h, w) < 2 ** depth:
            raise InvguiError(f"the Deep Image Prior's {depth} levels need an input of at least {2 ** depth} px")
        device = u0.device
        self.to_rgb_, self.from_rgb_, self.channels, self.depth = to_rgb, from_rgb, c, depth
        self.input_noise, self.clamp = float(input_noise), clamp
        # Restart r of every item: the generator and input noise restart r of its own run would have
        # (seeded from ``seed`` and r), so a batch of items gives each item its own run's result.
        nets, zs = [], []
        with torch.random.fork_rng(devices=[]):
            for row in range(rows):
                torch.manual_seed(seed * 1000 + row % restarts)
                nets.append(Generator(DIP_INPUT_CHANNELS, width, depth, c))
                zs.append(torch.rand(DIP_INPUT_CHANNELS, h, w) * 0.1)
        self.z = torch.stack(zs).to(device)
        # The input perturbation: a function of a fixed random field (per restart, repeated for every
        # item, so an item's rows see its own run's noise) and the step counter, not a random stream:
        # a step is then a function of the saved buffers alone, as the CUDA graph's fallback (which
        # restores them and steps again) and the graph-against-eager check need; and it is seeded.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 2)
            field = torch.rand(restarts, DIP_INPUT_CHANNELS, h, w)
        self.field = field.repeat(rows // restarts, 1, 1, 1).to(device)
        states = [net.state_dict() for net in nets]
        self.names = list(states[0])
        self.shapes = [tuple(states[0][k].shape) for k in self.names]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.variable = torch.stack([torch.cat([st[k].flatten() for k in self.names]) for st in states]).to(device)
        if fit_start:
            self._fit(u0)

    def _weights(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each parameter of the R generators as one grouped convolution's (R·out × in × k × k)."""
        rows = v.shape[0]
        parts = torch.split(v, self.sizes, dim=1)
        return {k: p.reshape(rows * s[0], *s[1:]) for k, p, s in zip(self.names, parts, self.shapes, strict=True)}

    def generate(self, v: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] (R × C × H × W) of the R generators with weights ``v`` on inputs ``z``:
        :class:`Generator`'s forward, every convolution grouped by restart."""
        if v.shape[0] > 1 and v.device.type == "cpu":
            return torch.cat([self.grouped(v[r:r + 1], z[r:r + 1]) for r in range(v.shape[0])])
        return self.grouped(v, z)

    def grouped(self, v: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """:meth:`generate` as one network of convolutions grouped by restart."""
        rows = v.shape[0]
        wts = self._weights(v)

        def conv(x, name, stride=1):
            weight = wts[f"{name}.weight"]
            k = weight.shape[-1]
            return F.conv2d(x, weight, wts[f"{name}.bias"], stride, k // 2, groups=rows)

        def act(x):
            return F.leaky_relu(x, 0.2)

        def cat(a, b):               # concatenate channels restart by restart
            (_, ca, hh, ww), cb = a.shape, b.shape[1]
            return torch.cat([a.view(1, rows, ca // rows, hh, ww), b.view(1, rows, cb // rows, hh, ww)], 2
                             ).view(1, ca + cb, hh, ww)

        x = z.reshape(1, -1, *z.shape[-2:])
        skips = []
        for i in range(self.depth):
            skips.append(act(conv(x, f"skip.{i}.0")))
            x = act(conv(act(conv(x, f"down.{i}.0", 2)), f"down.{i}.2"))
        for i in reversed(range(self.depth)):
            s = skips[i]
            x = F.interpolate(x, size=s.shape[-2:], mode="bilinear", align_corners=False)
            x = act(conv(act(conv(cat(x, s), f"up.{i}.0")), f"up.{i}.2"))
        out = torch.sigmoid(conv(x, "out"))
        return out.view(rows, -1, *out.shape[-2:])

    def render(self, v: torch.Tensor, train: bool = False, it: torch.Tensor | None = None) -> torch.Tensor:
        z = self.z
        if train and self.input_noise > 0 and it is not None:      # DIP's input perturbation, each iteration
            z = z + self.input_noise * perturbation(self.field, it)
        return _bounded(self.from_rgb_(self.generate(v, z))[:, :self.channels], self.clamp)

    def _fit(self, u0: torch.Tensor) -> None:
        """Fit every restart's generator to its start image (the hybrid's decoder output, or the
        target for the 'image' start), so the optimisation starts from it (Adam, MSE)."""
        target = self.to_rgb_(u0)[:, :self.channels].clamp(0, 1).detach()
        v = self.variable.clone().requires_grad_(True)
        opt = torch.optim.Adam([v], lr=DIP_FIT_LR)
        for _ in range(DIP_FIT_STEPS):
            with torch.enable_grad():
                loss = (self.generate(v, self.z)[:, :self.channels] - target).square().mean()
                opt.zero_grad()
                loss.backward()
            opt.step()
        self.variable = v.detach()


# The parameterisations by name (OptimizeParams.parameterisation): a new one is a class here with its
# ``name`` and ``start``, and its name in optimize_params.PARAMETERISATIONS (the pure list the
# command line's --help and the dock read without torch; a test checks the two agree).
KINDS: dict[str, type[Parameterisation]] = {cls.name: cls for cls in (Parameterisation, Fourier, DeepImagePrior)}
