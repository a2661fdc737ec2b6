"""Training a decoder: min Σ‖x_i − f(Φ(x_i))‖² by Adam over random crops, with held-out
evaluation after each epoch and checkpoints on the way."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ... import metrics
from ... import representations as R
from ...errors import InvguiError
from ...events import Event, Result, Status, Step
from ...export import library_versions
from ...images import ImageError, scan_images, skipped_words, to_uint8
from ...params import check, to_dict
from ...representations import REGISTRY, Representation, RepresentationError
from ..decoder_params import (  # noqa: F401
    COLLAPSE_LOSS,
    COLLAPSE_STEPS,
    COMPARATORS,
    MAX_HELD_OUT,
    PRECISIONS,
    TRAIN_PRESETS,
    TrainParams,
    lr_factor,
)
from . import nets
from .checkpoint import DecoderError, Loaded, _load_encoder, check_match, load_checkpoint, save_checkpoint
from .data import (
    Crops,
    GlobalBatches,
    ImageSet,
    _batch,
    check_workers,
    default_workers,
    loader,
    split,
    to_input,
)

# -- data ---------------------------------------------------------------------------------------

def train(rep: Representation, layer: str | None, data: str | os.PathLike | list, out: str | os.PathLike,
          params: TrainParams = TrainParams(), *, device: str | torch.device = "cpu",
          should_stop: Callable[[], bool] | None = None, resume: str | os.PathLike | None = None,
          held_out_data: str | os.PathLike | list | None = None, workers: int | None = None,
          init: str | os.PathLike | None = None) -> Iterator[Event]:
    """Train a decoder for ``rep`` at ``layer`` on the images under ``data``; write ``out``.

    ``data`` is a folder (searched recursively) or a list of image sources; ``held_out_data``
    (the same kinds), when given, is the held-out set instead of a random split.  Yields ``Step``s
    (losses ``train`` per step and ``held_out`` after each epoch; a preview strip of held-out
    originals over their reconstructions) and a final ``Result`` whose images are the held-out
    reconstructions.  A checkpoint is written after every epoch (atomically), so a stopped or
    killed run can be resumed with ``resume=out``.  ``init`` (a trained decoder for the same
    representation and layer, a shipped one say) starts from its weights, width and crop size with
    a fresh optimiser and schedule: fine-tuning, e.g. with the feature and adversarial terms.

    Crops are made by ``workers`` DataLoader processes (default: the usable cores beside the
    training processes, :func:`data.default_workers`); the crops, and so the result, do not depend
    on it.  Started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) it trains with
    DistributedDataParallel — NCCL on GPUs (one per local process), gloo on CPUs: every process
    takes its share of each global batch of ``params.batch`` crops, process 0 evaluates, previews
    and writes the checkpoints, and a checkpoint written by any number of processes resumes on any
    other number (the global batches, and so the training, are the same).

    The steps, each a function of its own: resume or start from a checkpoint (:func:`_resume`),
    read the images (:func:`_images`), build the networks and optimisers (:func:`_networks`), then
    :class:`_Training`: one training step with its loss terms, the health checks, the end of an
    epoch (held-out error, checkpoint) and the result.
    """
    p = check(params, "training parameters")
    dist_rank, world, local_rank, local_world = _distributed_env()
    device = torch.device(device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)           # one GPU per process on each machine
    layer = rep.resolve_layer(layer)
    if resume and init:
        raise InvguiError("give either resume (continue a run) or init (start a new run from a decoder's weights)")
    source = resume or init
    loaded, p, said = _resume(rep, layer, p, source, bool(init), world)
    size, note = rep.fit_size(p.size)           # a model made for one size: crops at that size
    if note:
        p = dataclasses.replace(p, size=size)
        said.append(note)
    for line in said:
        yield Status(line)
    _check_weights(p, world)
    torch.manual_seed(p.seed)
    rng = np.random.default_rng(p.seed)
    train_set, held_set, skipped, n_sources, others = _images(p, data, held_out_data)
    yield Status(f"reading {n_sources} images")
    if len(train_set) == 0:
        said_skipped = skipped_words(others, skipped)
        raise ImageError(f"{data}: no readable training images" + (f" ({said_skipped})" if said_skipped else ""))
    t = _Training(rep, layer, p, device, out, dist_rank, world)
    for line in t.build(loaded, source, bool(init), train_set, rng):
        yield Status(line)
    t.held = _held_images(held_set, min(len(held_set), MAX_HELD_OUT) if t.lead else 0)
    n_workers = default_workers(local_world) if workers is None else int(check_workers(int(workers)) or 0)
    t.describe(data, held_out_data, train_set, held_set, skipped, init)
    if skipped or others:
        yield Status(skipped_words(others, skipped))
    yield Status(t.summary(train_set, held_set, n_workers))
    batches = GlobalBatches(len(train_set), p.crops_per_image, p.batch, p.seed, dist_rank, world)
    crops = loader(Crops(train_set, p.seed), batches, n_workers, pin_memory=device.type == "cuda")
    own_group = t.wrap()
    t.begin(batches.steps)
    try:
        for epoch in range(t.start_epoch, p.epochs):
            batches.set_epoch(epoch)
            for s, (x, skipped_now) in enumerate(crops):
                t.lazily_skipped.update(skipped_now)
                value, parts, factor = t.step(to_input(x.to(device, non_blocking=True)))
                t.check_health(value, parts)
                yield t.report(value, parts, factor, last_of_epoch=s == batches.steps - 1)
                if should_stop is not None and _any_process(should_stop(), world, device):
                    t.stopped, t.message = True, f"stopped by the user at step {t.step_n} of {t.total}"
                    break
            t.end_epoch(epoch, len(skipped))
            if t.stopped:
                break
    finally:
        del crops                           # ends the worker processes now, not at garbage collection
        if p.autoencoder:
            rep.model.requires_grad_(False)
        t.net.eval().requires_grad_(False)
    if t.lazily_skipped:
        yield Status(f"skipped {len(t.lazily_skipped)} unreadable file(s) while training, "
                     f"e.g. {sorted(t.lazily_skipped)[0]}")
    yield t.result(len(train_set), len(skipped), own_group)


def _held_images(held_set: ImageSet, n: int) -> list[np.ndarray]:
    """The readable ones of the first ``n`` held-out images (a big collection: a fixed subset)."""
    out = []
    for i in range(n):
        with contextlib.suppress(ImageError):
            out.append(held_set.centre(i))
    return out


def _resume(rep: Representation, layer: str, p: TrainParams, source: str | os.PathLike | None, init: bool,
            world: int) -> tuple[Loaded | None, TrainParams, list[str]]:
    """The checkpoint to resume (or, ``init``, to start from), the parameters it keeps (its width
    and crop size: the network is rebuilt from its metadata, and what is saved must describe
    that network, whatever the flags say), and what to tell the user."""
    if not source:
        return None, p, []
    said = []
    loaded = load_checkpoint(source)
    check_match(loaded.meta, rep, layer, str(source))
    kept: dict[str, Any] = {"width": float(loaded.meta["width"]), "size": int(loaded.meta["input_size"])}
    if loaded.encoder is not None:      # a fine-tuned encoder stays fine-tuned (and saved)
        kept["autoencoder"] = True
    changed = [f"{k} {getattr(p, k)} → {v}" for k, v in kept.items() if getattr(p, k) != v]
    p = dataclasses.replace(p, **kept)
    if changed:
        said.append(f"{'starting from' if init else 'resuming'} {source}: keeping the checkpoint's "
                    + ", ".join(changed))
    if init:                            # its weights only: a new run, epoch 0, a fresh optimiser
        loaded = dataclasses.replace(loaded, epoch=0, optimizer=None, discriminator=None,
                                     discriminator_optimizer=None)
    before = (loaded.meta.get("training") or {}).get("world_size", 1)
    if before != world and not init:
        said.append(f"resuming {source}: trained so far by {before} process(es), now {world}; the global batch "
                    f"of {p.batch} is the same, so training goes on as it would have")
    return loaded, p, said


def _check_weights(p: TrainParams, world: int) -> None:
    if p.batch < world:
        raise InvguiError(f"a batch of {p.batch} cannot be shared by {world} processes; use --batch ≥ {world}")
    if p.pixel_weight <= 0 and p.feature_weight <= 0:
        raise InvguiError("every loss weight is 0 but the adversarial one: give the pixel or the feature loss a "
                          "weight above 0 (the adversarial term alone does not say which image to make)"
                          if p.adversarial_weight > 0 else
                          "every loss weight is 0: give the pixel or the feature loss a weight above 0")


def _images(p: TrainParams, data, held_out_data) -> tuple[ImageSet, ImageSet, list, int, list]:
    """The training and held-out sets (a random split of ``data`` unless ``held_out_data`` is
    given), the files that could not be read, how many sources there were, and the files of the
    folders that no image format is named by (left out, and said)."""
    others: list = []

    def listed(folder) -> list:
        if isinstance(folder, list):
            return list(folder)
        found = scan_images(folder)
        others.extend(found.others)
        return found.images

    sources = listed(data)
    if held_out_data is not None:
        train_src = sources
        held_src = listed(held_out_data)
    else:
        train_src, held_src = split(sources, p.held_out, p.seed)
    train_set, held_set = ImageSet(train_src, p.size, p.colour_jitter, p.rotate), ImageSet(held_src, p.size)
    return train_set, held_set, train_set.skipped + held_set.skipped, len(sources), others


class _Training:
    """One training run's networks, optimisers and state, step by step (see :func:`train`)."""

    def __init__(self, rep: Representation, layer: str, p: TrainParams, device: torch.device, out, rank: int,
                 world: int):
        self.rep, self.layer, self.p, self.device, self.out = rep, layer, p, device, out
        self.world, self.lead = world, rank == 0
        info = rep.layer_info(layer, p.size)
        if not info.fits:
            raise RepresentationError(f"{rep.name} {layer} does not fit a {p.size}×{p.size} crop: {info.error}")
        if info.shape is None:
            raise RepresentationError(f"{rep.name} {layer} outputs no tensor at a {p.size}×{p.size} crop")
        self.shape: tuple[int, ...] = info.shape
        self.stride = int(info.stride or 1)
        family = REGISTRY[rep.name].family if rep.name in REGISTRY else "cnn"
        self.layout = info.layout
        self.kind = nets.kind_for(family, self.layout)
        if p.autoencoder and rep.model is None:
            raise RepresentationError(f"{rep.name} has no weights to fine-tune: autoencoder mode needs a CNN")
        self.held: list[np.ndarray] = []
        self.history: dict[str, list[float]] = {"train": [], "held_out": []}
        self.lazily_skipped: set[str] = set()
        self.stopped, self.message = False, ""
        self.held_err = float("nan")
        self.recon = np.zeros((0, p.size, p.size, 3), np.float32)
        self.evaluated_at = -1              # the step of the last full held-out evaluation
        self.collapsing = 0                 # steps in a row with the discriminator's loss ≈ 0
        self.disc: nets.Discriminator | None = None
        self.d_opt: torch.optim.Adam | None = None

    # -- before the first step ----------------------------------------------------------------
    def build(self, loaded: Loaded | None, source, init: bool, train_set: ImageSet, rng) -> list[str]:
        """The decoder (from the checkpoint, or new with its input scale from a few crops), the
        encoder's parameters when it is fine-tuned, Adam, and the adversarial critic; what to say."""
        rep, p, device, said = self.rep, self.p, self.device, []
        rep.to(device)
        self.comparator = _comparator(p, rep, self.layer, device) if p.feature_weight > 0 else None
        encoder_params: list[torch.nn.Parameter] = []
        if p.autoencoder:
            rep.model.requires_grad_(True)
            rep.model.train(False)
            encoder_params = list(rep.model.parameters())
        self.start_epoch, opt_state = 0, None
        if loaded is not None:
            self.net = loaded.net.requires_grad_(True)
            if loaded.encoder is not None and p.autoencoder:
                _load_encoder(rep, loaded.encoder, str(source))
            self.start_epoch, opt_state = loaded.epoch, loaded.optimizer
            said.append(f"starting from the weights of {source}" if init
                        else f"resuming {source} after epoch {self.start_epoch}")
        else:
            self.net = nets.build(self.kind, self.shape, self.stride, p.width, self.layout)
            with torch.no_grad():           # the same probe crops in every process: the same scale
                crops = [train_set.crop(int(rng.integers(len(train_set))), rng) for _ in range(min(p.batch, 32))]
                self.net.set_scale(rep.features(_batch(crops, device), self.layer).cpu())
        self.net.to(device).train()
        self.opt = torch.optim.Adam(list(self.net.parameters()) + encoder_params, lr=p.lr, betas=(0.9, 0.999))
        if opt_state:
            with contextlib.suppress(ValueError):        # e.g. autoencoder switched: start Adam afresh
                self.opt.load_state_dict(opt_state)
        if p.adversarial_weight > 0:
            said += self._critic(loaded, source, init)
        self.names = ["pixel"] + (["feature_space"] if self.comparator is not None else []) \
            + (["adversarial", "discriminator"] if self.disc is not None else [])
        self.weights = {"pixel": p.pixel_weight, "feature_space": p.feature_weight,
                        "adversarial": p.adversarial_weight, "discriminator": 0.0}
        self.bf16, self.last = speed_settings(p, device)
        if self.last:
            self.net.to(memory_format=torch.channels_last)
        return said

    def _critic(self, loaded: Loaded | None, source, init: bool) -> list[str]:
        """The critic of the adversarial term, with its own optimiser (β1 0.5, the usual for GANs)."""
        p = self.p
        torch.manual_seed(p.seed + 1)
        disc = self.disc = nets.Discriminator(tuple(self.net.body_shape), p.width).to(self.device).train()
        d_opt = self.d_opt = torch.optim.Adam(disc.parameters(), lr=p.discriminator_lr, betas=(0.5, 0.999))
        if loaded is not None and loaded.discriminator is not None:
            try:
                disc.load_state_dict(loaded.discriminator)
                if loaded.discriminator_optimizer:
                    d_opt.load_state_dict(loaded.discriminator_optimizer)
            except (RuntimeError, ValueError, KeyError) as e:
                raise DecoderError(f"{source}: its discriminator does not fit this run's ({str(e)[:160]}); "
                                   "resume with the same width, or start afresh") from None
        elif loaded is not None and not init:
            return [f"resuming {source}: it has no discriminator, so the adversarial term starts with a new one"]
        return []

    def describe(self, data, held_out_data, train_set: ImageSet, held_set: ImageSet, skipped: list, init) -> None:
        """The checkpoints' metadata: what the decoder inverts, how it is built and trained."""
        p, rep = self.p, self.rep
        self.eval_n = metrics.mean_pairwise_distance(self.held) if len(self.held) >= 2 else None
        self.meta = {
            "method": "decoder", **rep.describe(), "layer": self.layer, "input_size": p.size,
            "feature_shape": list(self.shape), "layout": self.layout.to_dict(), "stride": self.stride,
            "architecture": self.kind,
            "width": p.width, "parameters": nets.count_parameters(self.net),
            "normalisation": {"mean": list(rep.mean), "std": list(rep.std)},
            "grayscale_features": bool(rep.grayscale), "autoencoder": p.autoencoder,
            "training": {"data": _describe(data), "held_out_data": _describe(held_out_data) if held_out_data
                         else f"random {p.held_out:.0%} of the data", "images": len(train_set),
                         "held_out_images": len(held_set), "skipped": len(skipped), "params": to_dict(p),
                         "world_size": self.world, "device": self.device.type, "init": str(init) if init else None,
                         "precision": "bf16" if self.bf16 else "fp32", "channels_last": self.last},
            "versions": library_versions(),
            "epochs": self.start_epoch,
        }

    def summary(self, train_set: ImageSet, held_set: ImageSet, n_workers: int) -> str:
        p, world = self.p, self.world
        return (f"training a {self.kind} decoder ({self.meta['parameters'] / 1e6:.2f} M parameters) on "
                f"{len(train_set)} images ({len(held_set)} held out) for {self.rep.name} {self.layer} "
                f"{'×'.join(map(str, self.shape))}"
                + (f" on {world} processes ({self.device.type}, {p.batch} crops per step in all)" if world > 1 else "")
                + f"; {n_workers or 'no'} data worker process(es)" + (" each" if world > 1 and n_workers else "")
                + ("; bf16 autocast" if self.bf16 else "") + ("; channels-last" if self.last else ""))

    def wrap(self) -> bool:
        """The decoder (and the critic) as the step calls them: under DistributedDataParallel when
        torchrun started several processes.  True when this call made the process group."""
        self.model: torch.nn.Module = _Model(self.net, self.rep, self.layer, self.p.autoencoder, self.bf16, self.last)
        self.d_model: torch.nn.Module | None = self.disc
        if self.world <= 1:
            return False
        own_group = _init_process_group(self.device)
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        self.model = DistributedDataParallel(self.model, device_ids=ids, broadcast_buffers=False)
        if self.disc is not None:        # its own wrapper: its gradients are averaged in its own step
            self.d_model = DistributedDataParallel(self.disc, device_ids=ids)
        return own_group

    def begin(self, steps_per_epoch: int) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.total = steps_per_epoch * self.p.epochs
        self.pixels = self.p.batch * 3 * self.p.size * self.p.size      # of a global batch: the loss is its mean
        self.step_n = self.start_epoch * steps_per_epoch
        self.saved_epoch = self.start_epoch     # the last checkpoint written (0: none by this run)
        self.t0 = time.perf_counter()

    # -- one step -------------------------------------------------------------------------------
    def step(self, x: torch.Tensor) -> tuple[float, dict[str, float], float]:
        """One training step of the decoder (and, alternating, of the critic) on a batch of crops:
        the training loss, its terms (each a mean over the global batch) and the rate factor."""
        p, world, net, disc = self.p, self.world, self.net, self.disc
        factor = lr_factor(p, self.step_n / max(self.total, 1))
        for g in self.opt.param_groups:
            g["lr"] = p.lr * factor
        sums = {}
        with torch.enable_grad():
            # Σ of squared errors over the global batch's pixel count, times the number of
            # processes: DDP averages the processes' gradients, so the sum is the gradient of the
            # global batch's mean squared error, however it is shared.  The other terms are sums
            # over this process's crops of per-crop values, likewise.
            y, phi = self.model(x)
            sums["pixel"] = (y - x).square().sum()
            loss = sums["pixel"] * (p.pixel_weight * world / self.pixels)
            if self.comparator is not None:
                sums["feature_space"] = _feature_distances(self.comparator, y, x).sum()
                loss = loss + sums["feature_space"] * (p.feature_weight * world / p.batch)
            if disc is not None:
                # The decoder's side: the non-saturating loss softplus(−D(y | Φ)), through a frozen
                # critic called directly (not through its DDP wrapper: no gradients of its own to
                # average in this step).
                cond = net._scaled(phi.detach()).float()
                disc.requires_grad_(False)
                sums["adversarial"] = F.softplus(-disc(y, cond)).sum()
                disc.requires_grad_(True)
                loss = loss + sums["adversarial"] * (p.adversarial_weight * world / p.batch)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
        self.opt.step()
        if disc is not None:
            sums["discriminator"] = self._critic_step(x, y.detach(), cond, factor)
        self.step_n += 1
        terms = torch.stack([sums[k].detach() / (self.pixels if k == "pixel" else p.batch) for k in self.names])
        if world > 1:
            torch.distributed.all_reduce(terms)
        parts = dict(zip(self.names, terms.tolist(), strict=True))
        return sum(self.weights[k] * v for k, v in parts.items()), parts, factor

    def _critic_step(self, x: torch.Tensor, y: torch.Tensor, cond: torch.Tensor, factor: float) -> torch.Tensor:
        """The critic's side, alternating: hinge loss on photos (≥ +1) and on the reconstructions
        just made (≤ −1), one forward of both for DDP."""
        assert self.d_opt is not None and self.d_model is not None
        for g in self.d_opt.param_groups:
            g["lr"] = self.p.discriminator_lr * factor
        with torch.enable_grad():
            scores = self.d_model(torch.cat([x, y]), torch.cat([cond, cond]))
            n = x.shape[0]
            loss = F.relu(1 - scores[:n]).sum() + F.relu(1 + scores[n:]).sum()
            self.d_opt.zero_grad(set_to_none=True)
            (loss * (self.world / self.p.batch)).backward()
        self.d_opt.step()
        return loss

    def check_health(self, value: float, parts: dict[str, float]) -> None:
        """A non-finite loss, or a critic that has collapsed, ends the run with what to change."""
        p = self.p
        if not all(math.isfinite(v) for v in [value, *parts.values()]):
            bad = ", ".join(f"{k} {v}" for k, v in parts.items() if not math.isfinite(v))
            raise FloatingPointError(f"the training loss became {value} at step {self.step_n} ({bad}); lower the "
                                     f"learning rate (now {p.lr:g}"
                                     + (f", the discriminator's {p.discriminator_lr:g}" if self.disc else "")
                                     + "); " + _kept(self.out, self.saved_epoch))
        if self.disc is not None:
            self.collapsing = self.collapsing + 1 if parts["discriminator"] < COLLAPSE_LOSS else 0
            if self.collapsing >= COLLAPSE_STEPS:
                raise FloatingPointError(
                    f"the discriminator collapsed at step {self.step_n}: its loss stayed below {COLLAPSE_LOSS:g} "
                    f"for {COLLAPSE_STEPS} steps, so it tells every reconstruction from a photo and the "
                    f"adversarial term no longer guides the decoder; lower the adversarial weight (now "
                    f"{p.adversarial_weight:g}) or the discriminator's learning rate (now "
                    f"{p.discriminator_lr:g}); " + _kept(self.out, self.saved_epoch))

    def report(self, value: float, parts: dict[str, float], factor: float, last_of_epoch: bool) -> Step:
        """The step's Step: its losses (the terms too when there are several), the held-out error
        at the end of an epoch, and a preview strip of held-out images every ``preview_every``."""
        p, held, step = self.p, self.held, self.step_n
        self.history["train"].append(value)
        losses = {"train": value}
        if len(self.names) > 1:                   # the terms, each drawn in the loss plot
            losses.update(parts)
            for k in self.names:
                self.history.setdefault(k, []).append(losses[k])
        preview = None
        if last_of_epoch and held:
            self.held_err, self.recon = _evaluate(self.net, self.rep, self.layer, held, self.device, p.batch)
            losses["held_out"] = self.held_err
            self.history["held_out"].append(self.held_err)
            self.evaluated_at = step
        if held and (step % p.preview_every == 0 or last_of_epoch):
            # Between epochs, reconstruct only the four images the preview shows.
            shown = self.recon[:4] if self.evaluated_at == step else \
                _evaluate(self.net, self.rep, self.layer, held[:4], self.device, p.batch)[1]
            preview = _strip(held[:4], shown)
        return Step(i=step, total=self.total, losses=losses, lr=p.lr * factor, elapsed=time.perf_counter() - self.t0,
                    preview=preview)

    # -- after an epoch, at the end ---------------------------------------------------------------
    def end_epoch(self, epoch: int, skipped: int) -> None:
        """The epoch's metadata, and (process 0, not stopped) its checkpoint."""
        meta = self.meta
        meta["epochs"] = epoch + 1 if not self.stopped else epoch
        meta["held_out_mse"] = self.held_err if math.isfinite(self.held_err) else None
        meta["training"]["skipped"] = skipped + len(self.lazily_skipped)
        if self.stopped:
            return
        if self.lead:
            self._save(_finish_meta(meta, self.held, self.recon, self.eval_n, time.perf_counter() - self.t0,
                                    self.step_n), epoch + 1)
        self.saved_epoch = epoch + 1

    def _save(self, meta: dict, epoch: int) -> None:
        save_checkpoint(self.out, self.net, meta,
                        encoder=self.rep.model.state_dict() if self.p.autoencoder else None,
                        optimizer=self.opt.state_dict(), epoch=epoch, **_critic(self.disc, self.d_opt))

    def result(self, n_train: int, skipped: int, own_group: bool) -> Result:
        """The held-out reconstructions and errors; a stopped run's steps saved as well."""
        p, held, step = self.p, self.held, self.step_n
        if held and self.evaluated_at != step:   # stopped mid-epoch (or resumed a finished run): evaluate now
            self.held_err, self.recon = _evaluate(self.net, self.rep, self.layer, held, self.device, p.batch)
        final = _finish_meta(self.meta, held, self.recon, self.eval_n, time.perf_counter() - self.t0, step)
        if self.stopped and step > self.start_epoch * self.steps_per_epoch and self.lead:
            self._save(final, self.meta["epochs"])
            self.message += (f"; the checkpoint holds {self.meta['epochs']} complete epoch(s) of training plus "
                             "this one's steps")
        if self.world > 1:
            torch.distributed.barrier()         # every process ends after the last checkpoint is written
            if own_group:
                torch.distributed.destroy_process_group()
        seconds = time.perf_counter() - self.t0
        m = {k: v for k, v in final.items() if k.startswith("held_out") and v is not None}
        m.update({"steps": step, "seconds": seconds,
                  "images_per_second": (step - self.start_epoch * self.steps_per_epoch) * p.batch / max(seconds, 1e-9),
                  "training_images": n_train, "skipped": skipped + len(self.lazily_skipped), "world_size": self.world})
        recon = self.recon
        return Result(images=recon if len(recon) else np.zeros((1, p.size, p.size, 3), np.float32),
                      target=held[0] if held else None, history=self.history, metrics=m,
                      record={**final, "checkpoint": str(self.out)}, stopped=self.stopped, message=self.message)


def _critic(disc, d_opt) -> dict:
    """The discriminator's part of a checkpoint (for --resume; shipped decoders leave it out)."""
    if disc is None:
        return {}
    return {"discriminator": disc.state_dict(), "discriminator_optimizer": d_opt.state_dict()}


def _kept(out, saved_epoch: int) -> str:
    return (f"the last good checkpoint, after epoch {saved_epoch}, is kept in {out}" if saved_epoch
            else "no checkpoint had been written yet")


def _comparator(p: TrainParams, rep: Representation, layer: str, device) -> tuple[Representation, str]:
    """(representation, layer) the feature loss compares in: frozen, on the device."""
    if p.comparator == "representation":
        if not rep.differentiable:
            raise RepresentationError(f"{rep.name} is not differentiable, so the feature loss cannot compare in it; "
                                      "choose an EfficientNet-Lite0 layer as the comparator")
        if p.autoencoder:
            raise RepresentationError("autoencoder mode changes the representation while it trains, so the feature "
                                      "loss cannot compare in it; choose an EfficientNet-Lite0 layer")
        return rep, layer
    model, _, cl = p.comparator.partition(":")
    comp = R.get(model).to(device)
    info = comp.layer_info(cl, p.size)
    if not info.fits:
        raise RepresentationError(f"the comparator {model} {cl} does not fit a {p.size}×{p.size} crop: {info.error}")
    return comp, cl


def _feature_distances(comparator: tuple[Representation, str], y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per crop ‖C(y) − C(x)‖² / ‖C(x)‖²: the comparator's features of the reconstructions against
    those of the originals (no gradient through the originals' side)."""
    comp, layer = comparator
    with torch.no_grad():
        fx = comp.features(x, layer).flatten(1)
    fy = comp.features(y, layer).flatten(1)
    return (fy - fx).square().sum(1) / fx.square().sum(1).clamp_min(1e-12)


def speed_settings(p: TrainParams, device: torch.device) -> tuple[bool, bool]:
    """(bf16 autocast, channels-last) for ``p`` on ``device``.  Both are off unless asked for: neither
    has been measured on a GPU yet (benchmarks/bench_decoder.py --precision-rows and its held-out
    check are the measurement), and on the CPU bf16 is far slower."""
    if p.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InvguiError(f"{torch.cuda.get_device_name(device)} has no bf16: use --precision fp32")
    return p.precision == "bf16", bool(p.channels_last)


class _Model(torch.nn.Module):
    """Features then decoder, as one module for DistributedDataParallel: the encoder is part of it
    (its gradients averaged too) only when it is fine-tuned.  The features are computed in float32
    whatever the precision (hand-crafted ones, HOG's orientation bins say, are not bf16-safe); the
    decoder runs under bf16 autocast when ``bf16``, and its output is float32 for the loss."""

    def __init__(self, net: nets.Decoder, rep: Representation, layer: str, finetune: bool,
                 bf16: bool = False, channels_last: bool = False):
        super().__init__()
        self.net = net
        self.encoder = rep.model if finetune else None
        self._rep, self._layer, self._finetune = rep, layer, finetune
        self._bf16, self._last = bf16, channels_last

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction, the features it was made from)."""
        if self._finetune:
            phi = self._rep.features(x, self._layer)
        else:
            with torch.no_grad():
                phi = self._rep.features(x, self._layer)
        if self._last and phi.dim() == 4:
            phi = phi.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self._bf16):
            y = self.net(phi, x.shape[-2:])
        return y.float(), phi


def _distributed_env() -> tuple[int, int, int, int]:
    """(rank, world size, local rank, processes on this machine) as torchrun sets them; (0, 1, 0, 1) otherwise."""
    env = os.environ
    world = int(env.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return 0, 1, 0, 1
    return (int(env.get("RANK", "0")), world, int(env.get("LOCAL_RANK", "0")),
            int(env.get("LOCAL_WORLD_SIZE", str(world))))


def _init_process_group(device: torch.device) -> bool:
    """Join torchrun's process group (NCCL on GPUs, gloo on CPUs); True when this call made it."""
    import torch.distributed as dist

    if not dist.is_available():
        raise InvguiError("this torch build has no torch.distributed: train on one process")
    if dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def _any_process(flag: bool, world: int, device: torch.device) -> bool:
    """Whether any process asks to stop (all must stop at the same step, or the others would wait)."""
    if world <= 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    torch.distributed.all_reduce(t)
    return bool(t.item() > 0)


def _describe(data) -> str:
    if isinstance(data, list):
        shown = ", ".join(map(str, data[:20])) + (", …" if len(data) > 20 else "")
        return f"{len(data)} images: {shown}"
    return str(data)


def _finish_meta(meta, held, recon, eval_n, seconds, steps) -> dict:
    out = dict(meta)
    if held and len(recon):
        errs = [float(np.sqrt(((r - h) ** 2).sum())) for r, h in zip(recon, held, strict=True)]
        out["held_out_mse"] = float(np.mean([((r - h) ** 2).mean() for r, h in zip(recon, held, strict=True)]))
        if eval_n:
            out["held_out_normalised_error"] = float(np.mean(errs) / eval_n)
    out["training_seconds"] = round(seconds, 2)
    out["training_steps"] = steps
    return out


@torch.no_grad()
def _evaluate(net, rep, layer, held, device, batch) -> tuple[float, np.ndarray]:
    was = net.training
    net.eval()
    outs = []
    for i in range(0, len(held), batch):
        x = _batch(held[i:i + batch], device)
        outs.append(net(rep.features(x, layer), x.shape[-2:]).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy())
    net.train(was)
    recon = np.concatenate(outs)
    return float(np.mean((recon - np.stack(held)) ** 2)), recon


def _strip(originals: list[np.ndarray], recon: np.ndarray) -> np.ndarray:
    """Originals on top, reconstructions below, as one uint8 image."""
    top = np.concatenate(list(originals), axis=1)
    bottom = np.concatenate(list(recon[:len(originals)]), axis=1)
    return to_uint8(np.concatenate([top, bottom], axis=0))


# -- reconstruction -------------------------------------------------------------------------------

