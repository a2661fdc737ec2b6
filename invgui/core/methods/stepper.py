"""The optimisation method's inner step, written so that it can be captured as one CUDA graph.

Everything a step reads or writes lives in tensors allocated once on the run's device: the image
variable ``u``, the optimiser's state and learning rate, the iteration counter, the jitter
table and the per-iteration loss history.  Between steps the host only *writes into* those
tensors (a new learning rate, a zeroed optimiser state); inside a step nothing is read back and
no Python value changes, so the same :meth:`Stepper.step` runs eagerly (CPU, or CUDA without a
graph) and, captured once, replays as a CUDA graph (:func:`capture`): one launch per iteration
instead of a few hundred small kernels from Python.  On a GPU a small network at batch 1 is
bound by those launches (docs/speed.md, "On a GPU").

The optimiser updates are written here rather than taken from ``torch.optim`` for two measured
reasons: the first ``torch.optim`` optimiser built in a process imports ``torch._dynamo``
(``add_param_group`` is wrapped by ``torch._disable_dynamo``), 2.0 s on the 2-core machine —
as long as ``import torch`` itself, and the cold start of ``invgui invert`` must stay within
2× that; and the presets need the state reset at a rate change and a stage switch done by
zeroing device tensors, with the rate read from a device tensor.  Each update is the same
arithmetic as its ``torch.optim`` counterpart (SGD with momentum, RMSprop with momentum, Adam,
default ε); ``tests/core/test_optimize.py`` checks them against ``torch.optim`` step by step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import InvguiError

EPS = 1e-8      # ε of torch.optim's RMSprop and Adam (as the presets use them)


class Update:
    """One optimiser on one tensor: ``sgd`` (momentum), ``rmsprop`` (momentum + squared-gradient
    accumulator, M&V 2016) or ``adam``; state and learning rate are device tensors."""

    def __init__(self, kind: str, u: torch.Tensor, momentum: float, decay: float):
        if kind not in ("sgd", "rmsprop", "adam"):
            raise InvguiError(f"unknown optimiser {kind!r}")
        self.kind, self.momentum, self.decay = kind, float(momentum), float(decay)
        self.lr = torch.zeros((), dtype=u.dtype, device=u.device)
        self.buf = torch.zeros_like(u, memory_format=torch.contiguous_format)
        self.sq = torch.zeros_like(self.buf) if kind != "sgd" else None
        self.t = torch.zeros((), dtype=u.dtype, device=u.device) if kind == "adam" else None

    def state(self) -> list[torch.Tensor]:
        return [t for t in (self.lr, self.buf, self.sq, self.t) if t is not None]

    def set_lr(self, lr: float) -> None:
        self.lr.fill_(lr)

    def reset(self) -> None:
        """Forget the momentum and accumulators (torch.optim: a fresh optimiser)."""
        for t in (self.buf, self.sq, self.t):
            if t is not None:
                t.zero_()

    @torch.no_grad()
    def __call__(self, u: torch.Tensor, g: torch.Tensor) -> None:
        mu, sq, t = self.momentum, self.sq, self.t
        if self.kind == "sgd":                       # torch.optim.SGD, dampening 0
            self.buf.mul_(mu).add_(g)
            u.sub_(self.lr * self.buf)
        elif self.kind == "rmsprop":                 # torch.optim.RMSprop, not centred
            assert sq is not None, "rmsprop keeps squared gradients"
            sq.mul_(self.decay).addcmul_(g, g, value=1 - self.decay)
            avg = sq.sqrt().add_(EPS)
            if mu > 0:
                self.buf.mul_(mu).addcdiv_(g, avg)
                u.sub_(self.lr * self.buf)
            else:
                u.sub_(self.lr * g / avg)
        else:                                        # torch.optim.Adam, bias-corrected
            assert t is not None and sq is not None, "adam counts its steps and keeps squared gradients"
            t.add_(1)
            self.buf.lerp_(g, 1 - mu)
            sq.mul_(self.decay).addcmul_(g, g, value=1 - self.decay)
            bc1 = 1 - torch.pow(mu, t)
            bc2 = 1 - torch.pow(self.decay, t)
            denom = (sq.sqrt() / bc2.sqrt()).add_(EPS)
            u.sub_((self.lr / bc1) * self.buf / denom)


class Stepper:
    """One optimisation step on static buffers.

    ``loss(x, u) -> (total, terms)``: ``x`` the batch fed to Φ (after the jitter), ``u`` the image
    in σ units (the priors'), ``total`` one value per batch item carrying the gradient, ``terms`` a
    1-D tensor of the logged terms (means over the batch).  ``u`` is the optimised variable itself
    (pixels), or ``render(u)`` (a spectrum, a generator's weights: ``.parameterisations``);
    ``to_x`` maps the image to that batch.  ``shifts`` (n×2 integer pixels, one row per
    iteration, zeros where there is no jitter) translates the image circularly; ``clamp`` > 0
    bounds each pixel's colour norm after the update (pixels only: a rendered image is bounded by
    its rendering).
    """

    def __init__(self, u: torch.Tensor, update: Update, to_x: Callable[[torch.Tensor], torch.Tensor],
                 loss: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                 n_terms: int, n_iters: int, shifts: torch.Tensor | None = None, clamp: float = 0.0,
                 render: Callable[..., torch.Tensor] | None = None, image_hw: tuple[int, int] | None = None):
        dev = u.device
        self.u, self.update, self.to_x, self.loss, self.clamp = u, update, to_x, loss, float(clamp)
        self.render = render
        self.it = torch.zeros(1, dtype=torch.long, device=dev)
        self.history = torch.zeros(n_iters, n_terms, dtype=torch.float32, device=dev)
        self.shifts = shifts.to(dev) if shifts is not None else None
        h, w = image_hw or u.shape[-2:]
        self._ar = (torch.arange(h, device=dev), torch.arange(w, device=dev))

    def buffers(self) -> list[torch.Tensor]:
        """Every tensor a step changes (saved and restored around a graph's warm-up)."""
        return [self.u, self.it, self.history] + self.update.state()

    def _jitter(self, x: torch.Tensor) -> torch.Tensor:
        # torch.roll takes Python shifts; the graph needs them on the device: the same circular
        # translation as index lookups (out[i] = x[(i − s) mod n]).
        assert self.shifts is not None, "jitter runs only with shifts"
        s = self.shifts.index_select(0, self.it).view(2)
        (ay, ax), (h, w) = self._ar, x.shape[-2:]
        x = x.index_select(2, torch.remainder(ay - s[0], h))
        return x.index_select(3, torch.remainder(ax - s[1], w))

    def step(self) -> None:
        with torch.enable_grad():            # grad mode is thread-local: set here, not by the caller
            image = self.render(self.u, train=True, it=self.it) if self.render is not None else self.u
            x = self.to_x(image)
            if self.shifts is not None:
                x = self._jitter(x)
            total, terms = self.loss(x, image)
            (g,) = torch.autograd.grad(total.sum(), [self.u])
        with torch.no_grad():
            self.update(self.u, g)
            if self.clamp > 0 and self.render is None:
                norm = self.u.norm(dim=1, keepdim=True)
                self.u.mul_(torch.clamp(self.clamp / norm.clamp_min(1e-12), max=1.0))
            self.history.index_copy_(0, self.it, terms.detach().float().view(1, -1))
            self.it.add_(1)


def capture(stepper: Stepper, warmup: int = 3) -> torch.cuda.CUDAGraph:
    """``stepper.step`` captured as a CUDA graph (replay = one step), the buffers as they were.

    A few steps run first on a side stream (lazy initialisation, cuDNN's choices, cached
    constants — PyTorch's documented recipe), then every buffer they changed is put back, so the
    replays continue exactly where the eager run would.  Raises whatever the capture raises
    (a host copy or sync inside the step); the caller falls back to eager steps.
    """
    saved = [b.detach().clone() for b in stepper.buffers()]
    side = torch.cuda.Stream(device=stepper.u.device)
    side.wait_stream(torch.cuda.current_stream(stepper.u.device))
    try:
        with torch.cuda.stream(side):
            for _ in range(warmup):
                stepper.step()
        torch.cuda.current_stream(stepper.u.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            stepper.step()
    finally:
        torch.cuda.synchronize(stepper.u.device)
        with torch.no_grad():
            for b, s in zip(stepper.buffers(), saved, strict=True):
                b.copy_(s)
    return graph
