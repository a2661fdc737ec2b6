"""Inversion by optimisation (Mahendran & Vedaldi 2015/2016), plus activation maximisation
and caricatures on the same machinery.

Find images x minimising

    C · ‖M⊙(Φ(x) − Φ0)‖² / ‖M⊙Φ0‖²  +  λα · mean |u|^α  +  λV · mean ((∂x u)² + (∂y u)²)^(β/2)

by gradient descent from noise, where ``M`` selects a subset of neurons (a spatial window
and/or channels; everything by default) and ``u`` is the image in **σ units**: the optimised
variable is ``u`` and the image fed to Φ is ``x = mean + σ·u/255`` (RGB in [0, 1]).  σ is the
typical RMS deviation of a natural image from the mean grey in 0–255 units, so ``|u| ≈ 2`` is
the edge of the displayable range; this "σ normalisation" makes the regularisers and the
learning rate independent of each model's input scaling, and the start image is noise of
natural-image norm (RMS ``init_scale`` in σ units).  With σ = B = 80 the regularisers are
exactly those of M&V 2016 (``λα = (1/B)^α``, ``λV = (6.5/B)^β`` on 0–255 pixels, divided by H·W).

Objectives (``objective``):
  * ``invert``     — the feature-matching term above;
  * ``maximise``   — ``−C · sum(M⊙Φ(x)) / (n · rms(Φ0))``, n the layer's size: make the selected
                     channel or neuron fire; rms(Φ0) of the opened image only sets the scale;
  * ``caricature`` — ``−C · ⟨M⊙Φ0, Φ(x)⟩ / ‖M⊙Φ0‖²``: amplify the target's own activations.

Several restarts run as one batch; the result keeps all of them and a per-pixel standard
deviation map (what the representation is invariant to).  ``run`` is a generator of
:mod:`invgui.core.events`; see docs/methods.md (the presets beside the papers') and
docs/developer/architecture.md.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import metrics
from ..errors import InvguiError
from ..events import Event, Result, Status, Step
from ..images import input_region, resize_center_crop, to_uint8
from ..layout import Layout, plain
from ..params import to_dict, validate
from ..regularizers import priors
from ..representations import LayerInfo, Representation, RepresentationError
from ..representations.base import luma255
from ..subsets import mask as subset_mask
from .base import MAX_BATCH_ROWS, Prepared, batches, prepare_layer  # noqa: F401  (MAX_BATCH_ROWS: importers)
from .optimize_params import (  # noqa: F401
    CNN_ONLY,
    EXPLODE,
    HYBRID_COLOURS,
    INITS,
    OBJECTIVES,
    OPTIMIZERS,
    PRESETS,
    REGULARISERS,
    SHALLOW_ONLY,
    TERMS,
    TV_BY_DEPTH,
    OptimizeParams,
    lr_at,
    preset_for,
)
from .parameterisations import KINDS, Parameterisation
from .stepper import Stepper, Update, capture

_COL = {name: i for i, name in enumerate(TERMS)}  # where a term sits in the per-iteration tensor


def _cols(names) -> list[int]:
    return [_COL[n] for n in names]
def resolve(p: OptimizeParams, info: LayerInfo) -> dict:
    """Layer-dependent values (from the layer tree, not from tables keyed by model name)."""
    tv = p.tv_weight
    if tv < 0:
        tv = next(w for edge, w in TV_BY_DEPTH if info.relative_depth < edge)
    jitter = p.jitter
    if jitter < 0:
        jitter = max(round((info.stride or 1) / 4), 1)
    return {"tv_weight": tv, "jitter": jitter, "stride": info.stride,
            "relative_depth": round(info.relative_depth, 4)}


GRAPH_CHECKS = 2        # the first graphed iterations of a run, each compared with an eager step
GRAPH_TOLERANCE = 1e-3  # relative: the loss terms and the updated image of graph and eager steps


def _can_graph(device: torch.device) -> bool:
    """Whether ``device`` can replay CUDA graphs (a test points this at the CPU, with a stand-in
    for :func:`capture`, to drive the fallbacks without a GPU)."""
    return device.type == "cuda"


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"


class _GraphMismatch(RuntimeError):
    pass


class _Saved:
    """A stepper's buffers as they were after ``i`` iterations (copies on the device)."""

    def __init__(self, stepper: Stepper, i: int):
        self.stepper, self.i = stepper, i
        self.buffers = [b.detach().clone() for b in stepper.buffers()]

    def restore(self) -> int:
        with torch.no_grad():
            for b, s in zip(self.stepper.buffers(), self.buffers, strict=True):
                b.copy_(s)
        return self.i


def _graph_matches_eager(graph, stepper: Stepper) -> str:
    """Run one step eagerly and the same step as a graph replay from the same state; "" when
    they agree (the logged terms — the representation error among them — and the updated image,
    each within GRAPH_TOLERANCE relative), else what differed.  The buffers end as the replay
    left them."""
    before = _Saved(stepper, 0)
    row = int(stepper.it)
    stepper.step()
    eager_terms, eager_u = stepper.history[row].clone(), stepper.u.detach().clone()
    before.restore()
    graph.replay()
    graph_terms, graph_u = stepper.history[row], stepper.u.detach()
    for what, a, b in (("loss terms", graph_terms, eager_terms), ("image", graph_u, eager_u)):
        if not bool(torch.isfinite(a).all()):
            return f"the graph's {what} are not finite"
        rel = float((a - b).norm() / b.norm().clamp_min(1e-12))
        if not rel <= GRAPH_TOLERANCE:
            return f"the graph's {what} differ from the eager step's by {rel:.2g} (relative)"
    return ""


class _Images:
    """Maps between σ-unit variables and RGB [0, 1] images for one representation."""

    def __init__(self, rep: Representation, sigma: float, device):
        self.mean = torch.tensor(rep.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.scale = sigma / 255.0

    def to_rgb(self, u: torch.Tensor) -> torch.Tensor:
        return self.mean + self.scale * u            # a one-channel u broadcasts to gray RGB

    def from_rgb(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


class FeatureObjective:
    """The feature term of each objective, per batch row (lower is better), on a neuron subset.

    ``phi0`` holds one target per batch *item* (K×…); the rows fed to :meth:`__call__` are the
    items' restarts, item after item (K·R rows).  ``channels`` / ``window`` are one subset for
    every item, or one per item (the subset variants of a sweep run as one batch)."""

    def __init__(self, objective: str, phi0: torch.Tensor, channels: str | list[str] = "",
                 window: str | list[str] = "", labels: list[str] | None = None, layout: Layout | None = None):
        if objective not in OBJECTIVES:
            raise InvguiError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
        k, shape = phi0.shape[0], tuple(phi0.shape[1:])
        chans = [channels] * k if isinstance(channels, str) else list(channels)
        wins = [window] * k if isinstance(window, str) else list(window)
        self.objective, self.phi0, self.items = objective, phi0, k
        lay = layout if layout is not None and layout.shape == shape else plain(shape)   # where channels and cells are
        self.layout = lay
        masks = [subset_mask(lay, c, w) for c, w in zip(chans, wins, strict=True)]
        self.mask = None
        if any(m is not None for m in masks):
            self.mask = torch.stack([m if m is not None else torch.ones(shape) for m in masks]).to(phi0.device)
        self.phi0_m = phi0 * self.mask if self.mask is not None else phi0
        self.norm0 = self.phi0_m.square().flatten(1).sum(1)                       # per item
        for i, (n, m) in enumerate(zip(self.norm0.tolist(), masks, strict=True)):
            if not math.isfinite(n) or (objective != "maximise" and n == 0):
                who = f"{labels[i]}: " if labels and k > 1 else ""
                raise InvguiError(f"{who}the target's features are all zero (or not finite)"
                                 f"{' in the chosen subset' if m is not None else ''}; there is nothing to "
                                 "invert: pick another layer, subset or image")
        self.n_sel = (self.mask.flatten(1).sum(1) if self.mask is not None
                      else torch.full((k,), float(phi0[0].numel()), device=phi0.device))
        self.scale0 = phi0.square().flatten(1).mean(1).sqrt().clamp_min(1e-8)   # for maximisation

    def _rows(self, phi: torch.Tensor) -> torch.Tensor:
        return phi.unflatten(0, (self.items, -1))           # K × R × …: the rows of each item

    def _select(self, t: torch.Tensor) -> torch.Tensor:      # t: K × R × …
        return t * self.mask[:, None] if self.mask is not None else t

    def __call__(self, phi: torch.Tensor) -> torch.Tensor:
        t = self._rows(phi)
        if self.objective == "invert":
            v = self._select(t - self.phi0[:, None]).square().flatten(2).sum(2) / self.norm0[:, None]
        elif self.objective == "caricature":
            v = -(t * self.phi0_m[:, None]).flatten(2).sum(2) / self.norm0[:, None]
        else:
            # Normalised by the layer's size (not the subset's) so each selected neuron pulls on the image
            # as hard as one entry of the feature-matching term does: one learning rate suits both.
            v = -self._select(t).flatten(2).sum(2) / self.phi0[0].numel() / self.scale0[:, None]
        return v.flatten()

    def activation(self, phi: torch.Tensor) -> torch.Tensor:
        """Mean activation of the selected neurons, per row (reported for every objective)."""
        return (self._select(self._rows(phi)).flatten(2).sum(2) / self.n_sel[:, None]).flatten()


@dataclass(frozen=True, eq=False)
class Target:
    """One item of a batch: what to reconstruct (an image, or target features with the image, if
    any, only for the metrics) and, optionally, its own neuron subset (None: the parameters')."""

    image: np.ndarray | None = None                  # H×W×3 float in [0, 1]
    features: torch.Tensor | None = None             # C×H×W or C, as saved by `invgui features`
    channels: str | None = None
    window: str | None = None
    label: str = ""
    start: np.ndarray | None = None                  # H×W×3 at the run's size: start here, not from noise


def _start(p: OptimizeParams, size: int, channels: int, target: torch.Tensor | None, conv: _Images,
           start: np.ndarray | None = None) -> torch.Tensor:
    gen = torch.Generator().manual_seed(p.seed)
    shape = (p.restarts, channels, size, size)
    if start is None and p.init == "uniform":
        return (torch.rand(shape, generator=gen) * 2 - 1) * p.init_scale
    noise = torch.randn(shape, generator=gen)
    noise = noise / noise.flatten(1).square().mean(1).sqrt().view(-1, 1, 1, 1) * p.init_scale
    if start is not None:
        # The hybrid method: the first restart starts at the given image (the decoder's output)
        # exactly, the others at it plus small noise (0.1 × the start noise RMS, as the 'image' start).
        x = torch.from_numpy(np.ascontiguousarray(start, np.float32)).permute(2, 0, 1)[None]
        if channels == 1:           # the representation's own luminance, so restart 1 has its features
            x = (luma255(x) / 255.0).expand(1, 3, -1, -1)
        base = conv.from_rgb(x)[:, :channels]
        jitter = 0.1 * noise
        jitter[0] = 0
        return base.expand(shape) + jitter
    if p.init == "image":
        if target is None:
            raise InvguiError("the 'image' start needs an image, not only target features")
        own = conv.from_rgb(target.cpu())
        if channels == 1:
            own = own.mean(1, keepdim=True)
        return own.expand(shape) + 0.1 * noise
    return noise


def run(rep: Representation, image: np.ndarray | None, layer: str | None = None,
        params: OptimizeParams = OptimizeParams(), *, device: str | torch.device = "cpu",
        should_stop: Callable[[], bool] | None = None, target_features: torch.Tensor | None = None,
        eval_distance: float | None = None) -> Iterator[Event]:
    """Reconstruct from ``rep`` at ``layer``.

    ``image`` (H×W×3 float in [0, 1]) gives Φ0 unless ``target_features`` (C×H×W or C, as saved
    by ``invgui features``) is given; with both, the image only serves the metrics.  Yields a
    :class:`Step` per iteration (losses of every term, averaged over restarts; a preview of the
    first restart every ``preview_every`` steps) and finally a :class:`Result`.
    ``should_stop`` is polled each iteration: when it returns True the run ends early with
    ``Result.stopped``.  ``close()`` on the generator cancels without a result.
    ``eval_distance`` (N of paper 001) adds the normalised reconstruction error ‖x − x0‖/N.
    """
    if image is None and target_features is None:
        raise InvguiError("give an image or target features")
    yield from run_batch(rep, [Target(image, target_features)], layer, params, device=device,
                         should_stop=should_stop, eval_distance=eval_distance)


def run_batch(rep: Representation, targets: list[Target], layer: str | None = None,
              params: OptimizeParams = OptimizeParams(), *, device: str | torch.device = "cpu",
              should_stop: Callable[[], bool] | None = None, eval_distance: float | None = None,
              eval_size: int = 0) -> Iterator[Event]:
    """:func:`run` for several targets at one layer in one batch: K targets × R restarts rows,
    each item's rows from the start noise its own run would draw (same seed), so every item ends
    where its own run would (up to float rounding).  Yields each item's ``Step``s (``item`` = its
    index in ``targets``; losses averaged over its restarts) and one ``Result`` per item, in
    order; a single target's events are exactly :func:`run`'s.  An item that diverges keeps its
    last good image and ends (its result says so); the others go on.  ``should_stop`` ends all.

    The steps, each a function of its own: check the request (:func:`_check`), build the batch
    (:meth:`_Batch.build`: features, objective, start, the step), capture it as a CUDA graph
    where it can be (:func:`_graph`), iterate with divergence checks at every flush
    (:class:`_Loop`), and make one result per item (:func:`_results`).
    """
    device = torch.device(device)
    layer, size, used = _check(rep, targets, layer, params)
    what = f" ({len(targets)} targets × {params.restarts} restarts in one batch)" if len(targets) > 1 else ""
    yield Status(f"preparing {rep.name} {layer} at {size}×{size} on {device}{what}")
    batch = _Batch.build(rep, targets, layer, params, device, size, used)
    graph, said = _graph(batch)
    if said:
        yield Status(said)
    loop = _Loop(batch)
    yield from loop.run(graph, should_stop)
    yield from _results(batch, loop, eval_distance, eval_size)


def _check(rep: Representation, targets: list[Target], layer: str | None,
           p: OptimizeParams) -> tuple[str, int, dict]:
    """The request's own consistency, before anything is computed: (layer, input side, the
    layer-dependent values resolved)."""
    problems = validate(p)
    if problems:
        raise InvguiError("invalid parameters: " + "; ".join(problems))
    if not rep.differentiable:
        raise RepresentationError(f"{rep.title or rep.name}: {rep.decoder_hint}")
    if not targets:
        raise InvguiError("give at least one target")
    for t in targets:
        if t.image is None and t.features is None:
            raise InvguiError(f"{t.label + ': ' if t.label else ''}give an image or target features")
    layer = rep.resolve_layer(layer)
    size = p.size or rep.input_size
    return layer, size, resolve(p, rep.check_input(layer, size))


@dataclass(eq=False)
class _Batch:
    """What one batch optimises, built once: the targets' features and objective, the variable
    u (σ units, K × R rows) and where it started, the loss and the step on static buffers."""

    rep: Representation
    layer: str
    p: OptimizeParams
    device: torch.device
    size: int
    used: dict
    targets: list[Target]
    crops: list[np.ndarray | None]          # each target image at the input size (None: features only)
    phi0: torch.Tensor                      # K × …
    chans: list[str]
    wins: list[str]
    objective: FeatureObjective
    conv: _Images
    u0: torch.Tensor
    u: torch.Tensor
    update: Update
    stepper: Stepper
    lr_scale: float
    param: Parameterisation                 # what u is: the image's pixels, a spectrum, generators' weights

    @property
    def k_items(self) -> int:
        return len(self.targets)

    @property
    def n_total(self) -> int:
        return self.p.iters + self.p.stage2_iters

    @classmethod
    def build(cls, rep: Representation, targets: list[Target], layer: str, p: OptimizeParams,
              device: torch.device, size: int, used: dict) -> _Batch:
        rep.to(device)
        rep.set_channels_last(p.channels_last)
        crops = [resize_center_crop(t.image, size) if t.image is not None else None for t in targets]
        x0s = [torch.from_numpy(c).permute(2, 0, 1)[None].to(device) if c is not None else None for c in crops]
        with torch.no_grad():
            phis = [t.features.to(device=device, dtype=torch.float32)[None] if t.features is not None
                    else rep.features(x0, layer)  # type: ignore[arg-type]  # x0: an image where no features are
                    for t, x0 in zip(targets, x0s, strict=True)]
        shapes = {tuple(f.shape[1:]) for f in phis}
        if len(shapes) > 1:
            raise InvguiError(f"{rep.name} {layer}: the targets' features differ in shape "
                              f"({', '.join(map(str, shapes))})")
        phi0 = torch.cat(phis)                                           # K × …
        chans = [t.channels if t.channels is not None else p.channels for t in targets]
        wins = [t.window if t.window is not None else p.window for t in targets]
        try:
            objective = FeatureObjective(p.objective, phi0, chans, wins, [t.label or f"target {i + 1}"
                                                                          for i, t in enumerate(targets)],
                                         layout=rep.layer_info(layer, size).layout)
        except ValueError as e:
            raise InvguiError(f"{rep.name} {layer}: {e}") from None
        conv = _Images(rep, p.sigma, device)
        # A representation of the grayscale image is inverted as a one-channel image (broadcast to
        # RGB), so colour the representation never saw is not invented — unless the run starts from
        # a given image (the hybrid method): then the colour the decoder predicted is kept, and only
        # the part of the image the features see (its luminance) gets the feature term's gradient.
        keep_guess = p.hybrid_colour == HYBRID_COLOURS[0]      # "decoder": keep the decoder's colour
        colour = not rep.grayscale or (any(t.start is not None for t in targets) and keep_guess)
        if rep.grayscale:
            used["colour"] = ("the decoder's guess (the features see luminance only)" if colour else
                              "gray (the features see luminance only)")
        for t in targets:
            if t.start is not None and t.start.shape[:2] != (size, size):
                raise InvguiError(f"the start image is {t.start.shape[1]}×{t.start.shape[0]}, the run {size}×{size}")
        u0 = torch.cat([_start(p, size, 3 if colour else 1, x0, conv, t.start)
                        for t, x0 in zip(targets, x0s, strict=True)])
        param = _parameterisation(p, u0.to(device), conv, len(targets), any(t.start is not None for t in targets))
        u0 = param.image()                          # what the run starts from (a rendered start, for metrics)
        u = param.variable.clone().requires_grad_(True)
        update = Update(p.optimizer, u, p.momentum, p.accumulator_decay)
        k_items, n_total, n_terms = len(targets), p.iters + p.stage2_iters, len(TERMS)
        tv_w = used["tv_weight"]

        def loss(x: torch.Tensor, u_: torch.Tensor):
            feat = p.feature_weight * objective(rep.features(x, layer))
            prior, ra, rv = priors(u_, p.alpha, p.alpha_weight, p.beta, tv_w)
            total = feat + prior
            # One tensor of every term (each item's mean over its restarts), item after item in
            # TERMS order: the host reads the history once every `preview_every` iterations.
            terms = torch.stack([total, feat, ra, rv], 1).detach().view(k_items, p.restarts, n_terms).mean(1)
            return total, terms.flatten()

        stepper = Stepper(u, update, conv.to_rgb, loss, k_items * n_terms, n_total, _shifts(p, used), p.clamp,
                          render=param.render if param.renders else None, image_hw=(size, size))
        # sgd: a per-pixel rate; the objective is a mean over pixels, so the step is scaled by their count.
        lr_scale = float(u0[0].numel()) if p.optimizer == "sgd" else 1.0
        if p.optimizer != "sgd" and any(t.start is not None for t in targets):
            # Adam's and RMSprop's steps are scale-free (≈ lr per value whatever the gradient): from
            # a decoder's reconstruction the preset's rate, made for a noise start, first throws
            # away what the decoder got right (HOG, 40 held-out photos, fast: image error 0.498 at
            # ×1 against the decoder's 0.491; 0.488 at ×0.25 with the feature error still below
            # optimisation's).
            lr_scale *= p.hybrid_lr
            used["hybrid_lr"] = p.hybrid_lr
        return cls(rep, layer, p, device, size, used, targets, crops, phi0, chans, wins, objective, conv, u0, u,
                   update, stepper, lr_scale, param)

    def image(self) -> torch.Tensor:
        """The image the variable renders now (σ units), without gradients."""
        with torch.no_grad():
            return self.param.render(self.u.detach()) if self.param.renders else self.u.detach()


def _parameterisation(p: OptimizeParams, u0: torch.Tensor, conv: _Images, k_items: int,
                      given_start: bool) -> Parameterisation:
    """The variable the optimiser changes, from the start images ``u0`` (K·R rows): the pixels
    themselves, or a spectrum / a generator started so that each item's rows are those its own run
    would start from (every item draws from ``p.seed``).  An image start (``init="image"``, the
    hybrid's decoder output) is the start image's own spectrum, or the generator fitted to it."""
    return KINDS[p.parameterisation].start(p, u0, conv.to_rgb, conv.from_rgb, items=k_items,
                                           image_start=given_start or p.init == "image")


def _shifts(p: OptimizeParams, used: dict) -> torch.Tensor | None:
    """The jitter's translations, one row per iteration (stage 1 only), drawn once up front."""
    if not (used["jitter"] and p.iters):
        return None
    jit = used["jitter"]
    gen = torch.Generator().manual_seed(p.seed + 1)
    shifts = torch.zeros(p.iters + p.stage2_iters, 2, dtype=torch.long)
    shifts[:p.iters] = torch.randint(-jit, jit + 1, (p.iters, 2), generator=gen)
    return shifts


def _graph(batch: _Batch) -> tuple[Any, str]:
    """The step captured as a CUDA graph where the device, the parameters and the environment
    allow it (None otherwise), and what to tell the user when capturing failed."""
    p, used = batch.p, batch.used
    used["cuda_graph"] = "off"
    if not (_can_graph(batch.device) and p.cuda_graph and batch.n_total > 1):
        return None, ""
    if os.environ.get("INVGUI_NO_CUDA_GRAPH", "") not in ("", "0"):
        used["cuda_graph"] = "off: INVGUI_NO_CUDA_GRAPH is set"
        return None, ""
    try:
        graph = capture(batch.stepper)
    except Exception as e:     # a forward with a host copy or sync cannot be captured: eager
        used["cuda_graph"] = f"off: capture failed ({_why(e)})"
        return None, f"CUDA graph: {used['cuda_graph'][5:]}; running eagerly"
    used["cuda_graph"] = "on"
    return graph, ""


class _Loop:
    """The iterations of a batch and what they leave: each item's loss history, its last good
    image (kept at every flush where its terms were finite and its regularisers sane), why it
    ended (it diverged) and whether the user stopped all."""

    def __init__(self, batch: _Batch):
        self.b = batch
        self.histories: list[dict[str, list[float]]] = [{k: [] for k in TERMS} for _ in batch.targets]
        self.last_good = batch.image().clone()
        self.first: torch.Tensor | None = None           # K × terms: the first flush's, the divergence scale
        self.ended = [""] * batch.k_items                # an item's end message (it diverged), "" while it goes on
        self.stopped_all, self.stop_message = False, ""
        self.elapsed = 0.0

    def run(self, graph, should_stop: Callable[[], bool] | None) -> Iterator[Event]:
        """Step to the end (or until every item ended, or the user stopped), flushing the terms to
        the host every ``preview_every`` iterations only.  A graph replay that fails, or whose first
        steps disagree with eager steps, never ends a run: the buffers are kept at every flush and
        the run goes on eagerly from there."""
        b, p, stepper, update = self.b, self.b.p, self.b.stepper, self.b.update
        n_total, k_items, n_terms, used = b.n_total, b.k_items, len(TERMS), b.used
        saved = _Saved(stepper, 0) if graph is not None else None
        checks_left = GRAPH_CHECKS
        lr_now: float | None = None
        flushed = i = 0
        t_start = time.perf_counter()
        while i < n_total:
            lr = lr_at(p, i)
            if lr != lr_now or i == p.iters:
                update.set_lr(lr * b.lr_scale)
                if p.reset_momentum or i == p.iters:      # (at i = 0 the state is still zero)
                    update.reset()
                lr_now = lr
            last = i + 1 == n_total
            try:
                if graph is not None and checks_left:
                    checks_left -= 1
                    mismatch = _graph_matches_eager(graph, stepper)
                    if mismatch:
                        raise _GraphMismatch(mismatch)
                elif graph is not None:
                    graph.replay()
                else:
                    stepper.step()
                user_stop = should_stop is not None and should_stop()
                flush = not (i + 1) % p.preview_every or last or user_stop
                if flush:              # the only host sync; an asynchronous replay error surfaces here
                    values = stepper.history[flushed:i + 1].cpu().view(-1, k_items, n_terms)
            except Exception as e:
                if graph is None:
                    raise
                assert saved is not None, "a graph is replayed only after its warm-up was saved"
                what = "differed from an eager step" if isinstance(e, _GraphMismatch) else "replay failed"
                used["cuda_graph"] = (f"off: {what} at iteration {i + 1} ({_why(e)}); eager from "
                                      f"iteration {saved.i + 1}")
                yield Status(f"CUDA graph {what} at iteration {i + 1} ({_why(e)}); running eagerly from "
                             f"iteration {saved.i + 1}")
                graph = None
                i = saved.restore()
                lr_now = lr_at(p, i - 1) if i else None    # the rate in force: no spurious reset
                continue
            if not flush:
                i += 1
                continue
            flushed = i + 1
            if graph is not None:
                saved = _Saved(stepper, flushed)
            yield from self._flush(values, time.perf_counter() - t_start)
            if all(self.ended):
                break
            if user_stop and not last:
                self.stopped_all = True
                self.stop_message = f"stopped by the user after {i + 1} of {n_total} iterations"
                break
            i += 1
        del graph, saved
        self.elapsed = time.perf_counter() - t_start

    def _flush(self, values: torch.Tensor, elapsed: float) -> Iterator[Step]:
        """The terms of the iterations since the last flush (n × K × terms): each item's history
        grows by its rows up to where it diverged (if it did: it ends there, with the reason), its
        last good image is kept, and its Steps go out (a preview with the last one)."""
        b, p = self.b, self.b.p
        if self.first is None:
            self.first = values[0].abs().clamp_min(1e-3)                  # K × terms
        first, reg = self.first, _cols(REGULARISERS)
        ok = torch.isfinite(values).all(2)                                                            # n × K
        if not b.param.renders:
            # Pixels can run away, and the regularisers say so first.  A rendered image (a spectrum or
            # a generator through a sigmoid) is bounded, so they cannot explode; its smooth start
            # (near-uniform grey) makes any growth look like a thousandfold one.
            ok &= (values[:, :, reg] <= EXPLODE * first[:, reg]).all(2)
        good_rows = torch.zeros(b.k_items, dtype=torch.bool)
        steps: list[tuple] = []            # (item, iteration, terms, with a preview)
        for k in range(b.k_items):
            if self.ended[k]:
                continue
            n_ok = len(values) if bool(ok[:, k].all()) else int((~ok[:, k]).nonzero()[0])
            history = self.histories[k]
            if n_ok < len(values):
                self.ended[k] = _diverged(values[n_ok, k], first[k], len(history["total"]) + n_ok + 1, p.lr)
            else:
                good_rows[k] = True
            for j, row_vals in enumerate(values[:n_ok, k].tolist()):
                for name, v in zip(TERMS, row_vals, strict=True):
                    history[name].append(v)
                steps.append((k, len(history["total"]), row_vals, j == n_ok - 1 and not self.ended[k]))
        if bool(good_rows.any()):
            keep = good_rows.repeat_interleave(p.restarts).to(b.device).view(-1, 1, 1, 1)
            self.last_good = torch.where(keep, b.image(), self.last_good)
        for k, n, row_vals, with_preview in steps:
            row = k * p.restarts              # the item's first restart, from the image just kept
            preview = to_uint8(_to_numpy(b.conv.to_rgb(self.last_good[row:row + 1]))[0]) if with_preview else None
            yield Step(i=n, total=b.n_total, losses=dict(zip(TERMS, row_vals, strict=True)), lr=lr_at(p, n - 1),
                       elapsed=elapsed, preview=preview, item=k)


def _diverged(row: torch.Tensor, first: torch.Tensor, iteration: int, lr: float) -> str:
    """Why an item's run diverged at ``iteration``: which term became non-finite or exploded."""
    bad = dict(zip(TERMS, row.tolist(), strict=True))
    limit = dict(zip(TERMS, (EXPLODE * first).tolist(), strict=True))
    term = next((t for t in ("feature", "alpha", "tv", "total") if not math.isfinite(bad[t])), None) \
        or next(t for t in REGULARISERS if bad[t] > limit[t])
    how = f"became {bad[term]}" if not math.isfinite(bad[term]) else "exploded"
    return (f"the run diverged: the {term} term {how} at iteration {iteration}; lower the learning rate "
            f"(now {lr:g}). The last good image is kept.")


def _results(b: _Batch, loop: _Loop, eval_distance: float | None, eval_size: int) -> Iterator[Result]:
    """One Result per item: its restarts' images, their deviation, its history, its metrics (the
    representation error from the start and at the end, the image metrics at the evaluation
    side) and the record of what ran."""
    p, rep, layer, size = b.p, b.rep, b.layer, b.size
    images = np.clip(_to_numpy(b.conv.to_rgb(loop.last_good)), 0.0, 1.0)
    phi0_rows = b.phi0.repeat_interleave(p.restarts, 0)
    with torch.no_grad():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).to(b.device)
        phi_end = rep.features(x, layer)
        phi_start = rep.features(b.conv.to_rgb(b.u0.to(b.device)).clamp(0, 1), layer)
        rep_err = metrics.representation_error(phi_end, phi0_rows).cpu().numpy()
        start_err = metrics.representation_error(phi_start, phi0_rows).cpu().numpy()
        act_end = b.objective.activation(phi_end).cpu().numpy()
        act_start = b.objective.activation(phi_start).cpu().numpy()
    elapsed = loop.elapsed
    for k, t in enumerate(b.targets):
        rows = slice(k * p.restarts, (k + 1) * p.restarts)
        history, target = loop.histories[k], b.crops[k]
        done = len(history["total"])
        err = rep_err[rows]
        res_metrics = {
            "representation_error": float(err.mean()),
            "representation_error_std": float(err.std()),
            "representation_error_sq": float((err ** 2).mean()),
            "representation_error_per_restart": err.tolist(),
            "start_representation_error": float(start_err[rows].mean()),
            "activation": float(act_end[rows].mean()),
            "start_activation": float(act_start[rows].mean()),
            "final_loss": history["total"][-1] if done else float("nan"),
            "iterations": done,
            "seconds": elapsed,
            "iterations_per_second": done / elapsed if elapsed > 0 else float("nan"),
        }
        item_images = images[rows]
        if target is not None:
            res_metrics.update(_image_metrics(item_images, t, target, size, eval_size, eval_distance))
        deviation = item_images.std(axis=0).mean(axis=2) if len(item_images) > 1 else None
        item_params = p if (b.chans[k], b.wins[k]) == (p.channels, p.window) else \
            dataclasses.replace(p, channels=b.chans[k], window=b.wins[k])
        record = {
            "method": "optimize",
            **rep.describe(),
            "weights_file": rep.weights_file,
            "layer": layer,
            "layer_shape": list(b.phi0.shape[1:]),
            "layer_layout": b.objective.layout.to_dict(),
            "input_size": size,
            "eval_size": eval_size or size,
            "device": str(b.device),
            "target": "features" if t.features is not None else "image",
            "params": to_dict(item_params),
            "resolved": dict(b.used),
        }
        if t.image is not None:               # which part of the image: a non-square one is cropped
            record["input_region"] = input_region(t.image.shape)
        if b.k_items > 1:                     # as the decoder's batches: which item of how many
            record["batch"], record["batch_index"] = b.k_items, k
        yield Result(images=item_images, target=target, history=history, metrics=res_metrics, record=record,
                     stopped=loop.stopped_all or bool(loop.ended[k]), message=loop.ended[k] or loop.stop_message,
                     deviation=deviation)


def _image_metrics(item_images: np.ndarray, t: Target, target: np.ndarray, size: int, eval_size: int,
                   eval_distance: float | None) -> dict[str, float]:
    """PSNR, SSIM (and paper 001's normalised error) of an item's restarts against its image, at
    the evaluation side (the window's; the run's own by default), as every method is measured."""
    pairs = metrics.at_eval_size(item_images, [t.image] * len(item_images), eval_size or size) \
        if t.image is not None and (eval_size or size) != size else [(im, target) for im in item_images]
    out: dict[str, float] = {}
    for name, fn in (("psnr", metrics.psnr), ("ssim", metrics.ssim)):
        vals = np.array([fn(im, tg) for im, tg in pairs])
        out[name], out[f"{name}_std"] = float(vals.mean()), float(vals.std())
    if eval_distance:
        vals = np.array([metrics.normalised_reconstruction_error(im, tg, eval_distance) for im, tg in pairs])
        out["normalised_reconstruction_error"] = float(vals.mean())
        out["normalised_reconstruction_error_std"] = float(vals.std())
        out["eval_distance"] = eval_distance
    return out


def prepare_request(prep: Prepared, features=None) -> None:
    """The registry's preparation: a differentiable representation (gradients flow through it),
    then the layer and side (:func:`.base.prepare_layer`)."""
    rep = prep.rep
    if not rep.differentiable:
        raise RepresentationError(f"{rep.name}: {rep.decoder_hint}: `invgui invert --model {rep.name} "
                                  "--method decoder --decoder FILE.pt` (train one with `invgui train-decoder`)")
    prepare_layer(prep, features)


def request_targets(prep: Prepared, starts: list | None = None) -> list[Target]:
    """The optimisation targets of a prepared request: its feature file (the image, if any, only
    serves the metrics), or one per image; ``starts`` (the hybrid's decoder outputs) start them."""
    req = prep.request
    starts = starts or [None] * max(len(prep.images), 1)
    if prep.target_features is not None:
        return [Target(prep.images[0] if prep.images else None, prep.target_features, label=prep.source,
                       start=starts[0])]
    return [Target(img, label=src, start=st) for src, img, st in zip(req.images, prep.images, starts, strict=True)]


def run_request(prep: Prepared, should_stop: Callable[[], bool] | None = None, *,
                targets: list[Target] | None = None, batch: list[Prepared] | None = None) -> Iterator[Event]:
    """The registry's entry: optimisation of ``targets`` (default: the request's own; with
    ``batch``, one per prepared request, each with its own neuron subset) at ``prep``'s layer, as
    few batches as fit ``MAX_BATCH_ROWS`` (items × restarts); items are numbered across the
    batches (``Step.item``, the records' ``batch_index``) and a list longer than one batch says so once."""
    if batch is not None:
        targets = [Target(b.images[0], channels=b.request.optimize_params().channels,
                          window=b.request.optimize_params().window, label=b.request.image) for b in batch]
    targets = request_targets(prep) if targets is None else targets
    params = dataclasses.replace(prep.request.optimize_params(), size=prep.size)
    chunks = batches(len(targets), params.restarts)
    for n, chunk in enumerate(chunks):
        if len(chunks) > 1:
            yield Status(f"batch {n + 1} of {len(chunks)}: targets {chunk.start + 1}–{chunk.stop} of {len(targets)}")
        for ev in run_batch(prep.rep, targets[chunk.start:chunk.stop], prep.layer, params, device=prep.device,
                            eval_distance=prep.eval_distance, should_stop=should_stop, eval_size=prep.eval_size):
            if chunk.start and isinstance(ev, Step):
                ev = dataclasses.replace(ev, item=ev.item + chunk.start)
            elif isinstance(ev, Result) and len(targets) > 1:
                ev.record["batch"] = len(targets)
                ev.record["batch_index"] = ev.record.get("batch_index", 0) + chunk.start
                ev.record["batch_rows"] = len(chunk) * params.restarts     # what ran together
            yield ev
        if should_stop is not None and should_stop():
            return                                # stopped: the later batches do not start


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).float().cpu().numpy()
