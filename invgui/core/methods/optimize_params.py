"""The optimisation method's parameters and named presets, in pure data: the command line's
``--help`` and argument errors, the dock's form and the session reader use them without
importing torch (which takes seconds).  :mod:`.optimize` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..params import Presets, param

TERMS = ("total", "feature", "alpha", "tv")      # the loss terms every Step reports, by name
REGULARISERS = ("alpha", "tv")                   # a run diverges when one of these explodes

OBJECTIVES = ("invert", "maximise", "caricature")
OPTIMIZERS = ("sgd", "rmsprop", "adam")
INITS = ("gaussian", "uniform", "image")
HYBRID_COLOURS = ("decoder", "gray")
PARAMETERISATIONS = ("pixel", "fourier", "dip")   # what is optimised: pixels, a spectrum, a generator's weights
MAGNITUDES = ("free", "natural")                  # fourier: spectrum optimised whole, or its phase alone (MACO)
EXPLODE = 1e3        # a regulariser 1000× its first value means the run is diverging

# TV weight by depth when tv_weight < 0 (mv2015): deep-goggle's 1/10/100 split of CaffeNet's
# layers into thirds, scaled ×0.5 to invgui's mean-based TV so the step stays stable at lr 0.004.
TV_BY_DEPTH = ((0.3, 0.5), (0.6, 5.0), (1.01, 50.0))


# Prior fields that act only under one parameterisation (a form disables them under the others).
FOURIER_ONLY = ("parameterisation", ("fourier",))
DIP_ONLY = ("parameterisation", ("dip",))


@dataclass(frozen=True)
class OptimizeParams:
    """Parameters of the optimisation method (one flag / one dock widget each)."""

    objective: str = param("invert", label="Objective", choices=OBJECTIVES, group="Objective",
                           tooltip="invert: match Φ0; maximise: make the selected neurons fire; "
                                   "caricature: amplify the target's own activations.")
    channels: str = param("", label="Channels", group="Objective",
                          tooltip="Subset of channels: empty = all; 5; 0,5,7; 10-20; first-half; second-half.")
    window: str = param("", label="Window", group="Objective",
                        tooltip="Spatial window of the feature map: empty = all; centre:N (the centre N×N "
                                "neurons); x0,y0,x1,y1 (cells, half-open).")
    restarts: int = param(1, label="Restarts", min=1, max=64, group="Start",
                          tooltip="Reconstructions from different noise, optimised together in one batch; "
                                  "their per-pixel deviation shows what Φ is invariant to.")
    init: str = param("gaussian", label="Start", choices=INITS, group="Start",
                      tooltip="Start image: Gaussian noise, uniform noise, or the target image itself.")
    init_scale: float = param(1.0, label="Start noise RMS", min=0.0, max=10.0, step=0.1, group="Start",
                              tooltip="Noise scale in σ units: RMS for Gaussian (1 = natural-image norm), "
                                      "half-range for uniform.")
    hybrid_colour: str = param("decoder", label="Colour of gray features", choices=HYBRID_COLOURS, group="Start",
                               tooltip="The hybrid method on a representation of the grayscale image (HOG, "
                                       "SIFT, LBP), which has no colour: keep the colour its decoder guessed, "
                                       "or reconstruct in gray. No effect otherwise.")
    hybrid_lr: float = param(0.25, label="Hybrid LR factor", min=0.0, max=1.0, step=0.05, group="Start",
                             tooltip="The hybrid method's optimisation starts at the decoder's reconstruction, "
                                     "already close: with adam or rmsprop, whose every step moves each value by "
                                     "about the learning rate whatever the gradient, the rate is multiplied by "
                                     "this (SGD's step shrinks with the gradient by itself). No effect otherwise.")
    seed: int = param(0, label="Seed", min=0, max=2**31 - 1, group="Start",
                      tooltip="Seed of the start noise and the jitter; the same seed gives the same result "
                              "on CPU with the same thread count.")
    iters: int = param(200, label="Iterations", min=1, max=100000, step=50, group="Schedule",
                       tooltip="Gradient steps of stage 1.")
    optimizer: str = param("sgd", label="Optimiser", choices=OPTIMIZERS, group="Schedule",
                           tooltip="sgd: momentum SGD (M&V 2015); rmsprop: momentum with an Adagrad-style "
                                   "squared-gradient accumulator (M&V 2016); adam.")
    lr: float = param(0.004, label="Learning rate", min=0.0, max=10.0, group="Schedule",
                      tooltip="sgd: step per pixel value (the mean-based objective's gradient is scaled by "
                              "the number of values, so one rate fits every input size; M&V's code uses "
                              "0.004). rmsprop/adam: step in σ units.")
    momentum: float = param(0.9, label="Momentum", min=0.0, max=0.999, step=0.05, group="Schedule",
                            tooltip="Momentum (M&V use 0.9); β1 for adam.")
    accumulator_decay: float = param(0.9, label="Accumulator decay", min=0.0, max=0.9999, step=0.05,
                                     group="Schedule",
                                     tooltip="Decay of the squared-gradient accumulator (rmsprop; β2 for adam).")
    lr_milestones: tuple[float, ...] = param((0.6, 0.85), label="LR milestones", min=0.0, max=1.0,
                                             group="Schedule",
                                             tooltip="Fractions of stage 1 at which the learning rate is "
                                                     "multiplied by the decay (a step schedule).")
    lr_decay: float = param(0.1, label="LR decay", min=0.0, max=1.0, step=0.1, group="Schedule",
                            tooltip="Factor applied to the learning rate at each milestone.")
    reset_momentum: bool = param(True, label="Reset momentum when LR changes", group="Schedule",
                                 tooltip="Zero the optimiser state whenever the learning rate changes "
                                         "(as in deep-goggle).")
    stage2_iters: int = param(0, label="Stage 2 iterations", min=0, max=100000, step=10, group="Schedule",
                              tooltip="A second stage without jitter (M&V 2016: 50).")
    stage2_lr: float = param(0.1, label="Stage 2 LR factor", min=0.0, max=1.0, step=0.1, group="Schedule",
                             tooltip="Stage 2 learning rate as a fraction of the base rate (M&V 2016: 0.1).")
    jitter: int = param(0, label="Jitter (px)", min=-1, max=64, group="Schedule", special="auto (stride/4)",
                        tooltip="Random translation of the image each stage-1 iteration, up to this many "
                                "pixels; -1 = max(round(stride/4), 1) from the layer (M&V 2016).")
    feature_weight: float = param(1.0, label="Feature weight C", min=0.0, max=1e6, group="Loss",
                                  tooltip="Weight C of the objective's feature term (M&V 2016 sweep C over "
                                          "1, 20, 100, 300; deeper layers want smaller C). Activation "
                                          "maximisation wants C ≈ 100.")
    alpha: float = param(6.0, label="α (norm exponent)", min=1.0, max=20.0, step=1.0, group="Loss",
                         tooltip="Exponent of the α-norm prior; large α keeps pixels in range (M&V: 6).")
    alpha_weight: float = param(1e-4, label="λα", min=0.0, max=1e6, group="Loss",
                                tooltip="Weight of the α-norm prior mean|u|^α (u: image in σ units).")
    beta: float = param(2.0, label="β (TV exponent)", min=0.5, max=4.0, step=0.5, group="Loss",
                        tooltip="Exponent of the TV^β prior; β > 1 removes spikes (M&V: 2).")
    tv_weight: float = param(10.0, label="λV", min=-1.0, max=1e6, group="Loss",
                             tooltip="Weight of the TV^β prior; -1 = by the layer's depth (0.5 / 5 / 50 for "
                                     "the first / middle / last third, M&V's 1:10:100).")
    sigma: float = param(64.0, label="σ (natural-image RMS)", min=1.0, max=255.0, group="Loss",
                         tooltip="RMS deviation of natural images from mean grey, 0–255 units; the image "
                                 "is optimised in units of σ (M&V 2016: B = 80).")
    clamp: float = param(0.0, label="Colour-norm clamp", min=0.0, max=100.0, step=0.5, group="Loss",
                         tooltip="After each step, clamp every pixel's colour norm to this many σ "
                                 "(0 = off; M&V 2016: B+/B = 160/80 = 2).")
    parameterisation: str = param("pixel", label="Image parameterisation", choices=PARAMETERISATIONS,
                                  group="Prior",
                                  tooltip="What the optimisation changes: pixel — the image (Mahendran & Vedaldi); "
                                          "fourier — a decorrelated-colour spectrum scaled by 1/f, rendered by an "
                                          "inverse FFT and a sigmoid (Olah et al. 2017, Lucid/Lucent); dip — the "
                                          "weights of a random encoder-decoder fed fixed noise (Deep Image Prior, "
                                          "Ulyanov et al. 2018). The α-norm, TV^β, bound and jitter act on the "
                                          "rendered image.")
    decay: float = param(1.0, label="Spectrum decay", min=0.0, max=4.0, step=0.25, group="Prior",
                         applies=FOURIER_ONLY,
                         tooltip="fourier: the spectrum is scaled by 1/f^decay (1 = Lucid's).")
    magnitude: str = param("free", label="Spectrum magnitude", choices=MAGNITUDES, group="Prior",
                         applies=FOURIER_ONLY,
                           tooltip="fourier: free — magnitude and phase optimised; natural — the magnitude fixed "
                                   "to natural photos' average, only the phase optimised (MACO, Fel et al. 2023).")
    dip_width: int = param(32, label="DIP width", min=4, max=256, group="Prior",
                         applies=DIP_ONLY,
                           tooltip="dip: channels of the generator's convolutions.")
    dip_depth: int = param(4, label="DIP depth", min=1, max=7, group="Prior",
                         applies=DIP_ONLY,
                           tooltip="dip: down/up levels of the generator (the input must be at least 2^depth px).")
    dip_noise: float = param(1 / 30, label="DIP input perturbation", min=0.0, max=1.0, step=0.01, group="Prior",
                         applies=DIP_ONLY,
                             tooltip="dip: standard deviation of the noise added to the generator's fixed input "
                                     "each iteration (DIP: 1/30; 0 = none).")
    size: int = param(0, label="Input size", min=0, max=4096, step=16, group="Input",
                      special="model default",
                      tooltip="Side of the square input in pixels (0 = the model's own, e.g. 224).")
    channels_last: bool = param(False, label="Channels-last layout", group="Speed",
                                tooltip="Run convolutions in the channels-last memory layout; off by default "
                                        "because on the 2-core CPU measured it gained 0–12 %, within noise; "
                                        "benchmarks/bench_optimize.py --channels-last tells for your machine.")
    cuda_graph: bool = param(True, label="CUDA graph", group="Speed",
                             tooltip="On a CUDA device, capture the optimisation step once as a CUDA graph "
                                     "and replay it (one launch per iteration instead of hundreds); a "
                                     "representation that cannot be captured runs eagerly and the run's "
                                     "log says why. No effect on the CPU.")
    preview_every: int = param(10, label="Preview every", min=1, max=10000, group="Display",
                               tooltip="Send a preview image (and read losses back) every k iterations.")

    def changed(self, **changes: Any) -> OptimizeParams:
        """These parameters with ``changes``, and what follows from them: a parameterisation other
        than this one's brings the optimiser, schedule and prior weights made for it (the other
        ``changes`` still win).  Every place that changes parameters asks this — the command line,
        a sweep, the window's form (:class:`invgui.ui.widgets.param_form.ParamForm`, on a choice)."""
        return changed(self, **changes)


PRESETS: Presets[OptimizeParams] = Presets(OptimizeParams)
PRESETS.add("default", OptimizeParams())
# Mahendran & Vedaldi 2015 (deep-goggle invert_nn): momentum 0.9 reset at each rate change,
# 0.004 × [1 for 100 it, 0.1 for 200, 0.01 for 100], α = 6, β = 2, TV weight by depth,
# four restarts, Gaussian start of natural-image norm.
PRESETS.add("mv2015", OptimizeParams(iters=400, optimizer="sgd", lr=0.004, momentum=0.9,
                                     lr_milestones=(0.25, 0.75), lr_decay=0.1, reset_momentum=True,
                                     alpha=6.0, alpha_weight=1e-4, beta=2.0, tv_weight=-1.0, sigma=64.0,
                                     init="gaussian", init_scale=1.0, restarts=4))
# The same for shallow features (deep-goggle's HOG/DSIFT runs): 0.004 × [1, 0.1, 0.01, 0.001], 200
# iterations each, TV weight 1 in their units — the first-third value of TV_BY_DEPTH here (a
# hand-crafted representation has relative depth 0).  Measured in benchmarks/eval_shallow.py.
PRESETS.add("mv2015-shallow", OptimizeParams(iters=800, optimizer="sgd", lr=0.004, momentum=0.9,
                                             lr_milestones=(0.25, 0.5, 0.75), lr_decay=0.1,
                                             reset_momentum=True, alpha=6.0, alpha_weight=1e-4, beta=2.0,
                                             tv_weight=TV_BY_DEPTH[0][1], sigma=64.0, init="gaussian",
                                             init_scale=1.0, restarts=1))
# Mahendran & Vedaldi 2016 (nnpreimage): B = 80, B+ = 160, λα = (1/B)^α, λV = (6.5/B)^β (so, in
# σ = B units, weights 1 and 6.5² = 42.25), C = 100, stage 1: 300 it with jitter stride/4,
# stage 2: 50 it at 0.1·lr without jitter, momentum 0.9 with a squared-gradient accumulator
# (decay 0.9), uniform start over the B range.  Their rate 0.05·B²/α is for their own units;
# with the accumulator the step is scale-free, in σ units here.  Measured on sample:chelsea,
# efficientnet_lite0 blocks.3: lr 0.01 / 0.02 / 0.05 / 0.1 end at representation error
# 0.302 / 0.306 / 0.316 / 0.319, so 0.01.
PRESETS.add("mv2016", OptimizeParams(iters=300, stage2_iters=50, stage2_lr=0.1, optimizer="rmsprop",
                                     lr=0.01, momentum=0.9, accumulator_decay=0.9, lr_milestones=(),
                                     reset_momentum=False, jitter=-1, feature_weight=100.0, alpha=6.0,
                                     alpha_weight=1.0, beta=2.0, tv_weight=42.25, sigma=80.0, clamp=2.0,
                                     init="uniform", init_scale=1.0))

# fast: Adam in σ units.  Measured (sample:chelsea, efficientnet_lite0, 2-core CPU): seconds until
# the representation error falls below 0.5 — at blocks.1 / blocks.3 / blocks.5: lr 0.2, λV 1:
# 0.65 / 0.56 / 0.38 s; lr 0.1: 0.90 / 0.98 / 0.41 s; lr 0.4: 0.86 / 0.73 / 0.40 s; λV 3 slower at
# every depth.  mv2015 with one restart needs 3.17 s at blocks.3, the default preset 3.86 s.
PRESETS.add("fast", OptimizeParams(iters=100, optimizer="adam", lr=0.2, momentum=0.9, accumulator_decay=0.99,
                                   lr_milestones=(0.6, 0.85), lr_decay=0.1, reset_momentum=False,
                                   tv_weight=1.0))

# lucent: Lucid/Lucent's default image — a decorrelated Fourier spectrum, Adam at 0.05 — with no
# α-norm or TV (the parameterisation is the prior).
PRESETS.add("lucent", OptimizeParams(iters=200, optimizer="adam", lr=0.05, momentum=0.9, accumulator_decay=0.999,
                                     lr_milestones=(), reset_momentum=False, alpha_weight=0.0, tv_weight=0.0,
                                     parameterisation="fourier"))
# fourier-tv: Lucent's spectrum with Mahendran & Vedaldi's α-norm and TV^β on the rendered image
# (fast's weights: λα 1e-4, λV 1 in σ units).  Chosen on astronaut, camera and coins (EfficientNet-
# Lite0, 128 px, 200 it) over lucent and over this with fast's LR milestones: at blocks.3 / blocks.5
# normalised error 0.592 / 0.726 (lucent 0.601 / 0.730), Lite1 distance 0.426 / 0.893 (0.449 /
# 0.937); then measured on the held-out photos (docs/methods.md, benchmarks/eval_priors.py).
PRESETS.add("fourier-tv", replace(PRESETS.get("lucent"), alpha_weight=1e-4, tv_weight=1.0))
# dip: Deep Image Prior's inversion settings — Adam on the generator's weights, input perturbation
# 1/30, no α-norm or TV.  lr 0.001 with the generator's He initialisation (parameterisations.Generator),
# measured on the cat, EfficientNet-Lite0 blocks.3, 300 it: representation error 0.464 / 0.486 / 0.563
# at 96 / 128 / 224 px.  Before (PyTorch's default init, lr 0.003): 0.574 at 128 px, and at 224 px
# the output sigmoid saturated to one flat colour (1.251 → 1.341): issue 37 §3.
PRESETS.add("dip", OptimizeParams(iters=300, optimizer="adam", lr=0.001, momentum=0.9, accumulator_decay=0.999,
                                  lr_milestones=(), reset_momentum=False, alpha_weight=0.0, tv_weight=0.0,
                                  parameterisation="dip"))


# Presets made for one kind of representation, and their counterpart for the other kind.
_COUNTERPART = {"mv2015": "mv2015-shallow", "mv2015-shallow": "mv2015"}
SHALLOW_ONLY = ("mv2015-shallow",)
CNN_ONLY = ("mv2015",)


def preset_for(name: str, handcrafted: bool) -> str:
    """``name`` when it suits the kind of representation, else its counterpart (mv2015 ↔
    mv2015-shallow: the 2015 paper's schedules for CNNs and for HOG/DSIFT)."""
    wrong = CNN_ONLY if handcrafted else SHALLOW_ONLY
    return _COUNTERPART.get(name, "default") if name in wrong else name


# Each parameterisation's working settings: the optimiser and its schedule, and the prior weights,
# from the preset made for it.  A learning rate for pixels moves a spectrum or a generator's
# weights by nonsense amounts (measured at EfficientNet-Lite0 blocks.3, 40 iterations: the default
# preset's SGD saturates the Fourier image — PSNR 4.9 dB — and makes the generator's loss NaN).
PRIOR_PRESETS = {"pixel": "default", "fourier": "lucent", "dip": "dip"}
SCHEDULE = ("optimizer", "lr", "momentum", "accumulator_decay", "lr_milestones", "lr_decay", "reset_momentum",
            "alpha_weight", "tv_weight")


def changed(base: OptimizeParams, **changes: Any) -> OptimizeParams:
    """``base`` with ``changes``.  A parameterisation other than ``base``'s brings the optimiser,
    schedule and prior weights of the preset made for it (``PRIOR_PRESETS``) — applied here, once,
    for the command line, a sweep and the window alike — and the other ``changes`` still win over
    them; everything else (objective, iterations, restarts, seed, input) is kept."""
    name = changes.get("parameterisation")
    if name is not None and name != base.parameterisation:
        preset = PRESETS.get(PRIOR_PRESETS[name])
        base = replace(base, parameterisation=name, **{f: getattr(preset, f) for f in SCHEDULE})
    return replace(base, **changes)


def lr_at(p: OptimizeParams, i: int) -> float:
    """Learning rate for 0-based iteration ``i`` (stage 1 step schedule, then stage 2)."""
    if i >= p.iters:
        return p.lr * p.stage2_lr
    drops = sum(1 for m in p.lr_milestones if i >= round(m * p.iters))
    return p.lr * (p.lr_decay ** drops)


# What each preset is for, one line under the preset box of the window (and in `invgui invert --help`'s spirit).
PRESETS.notes.update({
    "default": "Momentum SGD with α-norm and TV^β (Mahendran & Vedaldi's regularisers), 200 iterations.",
    "mv2015": "The CVPR 2015 paper's own schedule (deep-goggle): 400 iterations, TV by depth, 4 restarts.",
    "mv2015-shallow": "The 2015 schedule for HOG and dense SIFT: 800 iterations in four stages.",
    "mv2016": "The IJCV 2016 paper's (nnpreimage): bounded pixels, jitter, then a finer stage; 350 iterations.",
    "fast": "Adam on σ-normalised pixels with TV: the quickest to a good match, 100 iterations.",
    "lucent": "The decorrelated Fourier image (Lucid/Lucent's): natural colour, no α-norm or TV, 200 iterations.",
    "fourier-tv": "The Fourier image with α-norm and TV^β: the best prior here at mid and deep CNN layers.",
    "dip": "Deep Image Prior: a random generator's weights are optimised; smooth, natural images, 300 iterations.",
})
