"""The decoder training's parameters and presets, in pure data: the command line's ``--help``
and argument errors and the training dialog's form use them without importing torch.
:mod:`.decoder.train` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..params import Presets, param

# The channel multiplier a decoder may have: TrainParams.width's range and what a checkpoint's
# metadata may say (decoder.nets and decoder.checkpoint read them here, below train.py).
WIDTH_MIN, WIDTH_MAX = 0.02, 2.0

MAX_HELD_OUT = 256      # held-out images evaluated after each epoch
# The adversarial term's discriminator has collapsed when its hinge loss (per crop, photos and
# reconstructions together; 2 when it cannot tell them apart) stays below COLLAPSE_LOSS this many
# steps in a row: it then separates them with a margin everywhere and its verdict stops guiding.
COLLAPSE_LOSS = 1e-3
COLLAPSE_STEPS = 100
PRECISIONS = ("fp32", "bf16")
# What the feature-space loss compares reconstructions in (paper 001, appendix A): the inverted
# representation itself, or a layer of the embedded EfficientNet-Lite0.
COMPARATORS = ("representation", "efficientnet_lite0:blocks.1", "efficientnet_lite0:blocks.2",
               "efficientnet_lite0:blocks.3", "efficientnet_lite0:blocks.4")


@dataclass(frozen=True)
class TrainParams:
    """Training of a decoder (paper 001 §3: Adam β 0.9/0.999, batch 64, lr 1e-3 decayed at the end)."""

    epochs: int = param(10, label="Epochs", min=1, max=100000, group="Training",
                        tooltip="Passes over the training images (each gives 'crops per image' random crops).")
    batch: int = param(64, label="Batch", min=1, max=4096, group="Training", tooltip="Mini-batch size (paper: 64).")
    lr: float = param(1e-3, label="Learning rate", min=1e-7, max=1.0, group="Training",
                      tooltip="Adam's initial learning rate (paper: 0.001).")
    decay_from: float = param(0.7, label="Decay from", min=0.0, max=1.0, step=0.05, group="Training",
                              tooltip="Fraction of training after which the rate decays geometrically, reaching "
                                      "'final LR factor' × lr at the end (paper: 'gradually decreased towards "
                                      "the end').")
    final_lr: float = param(0.1, label="Final LR factor", min=0.0, max=1.0, step=0.05, group="Training",
                            tooltip="The learning rate at the end, as a fraction of the initial one.")
    size: int = param(64, label="Crop size (px)", min=16, max=1024, step=16, group="Data",
                      tooltip="Side of the random training crops; also the default reconstruction size.")
    crops_per_image: int = param(16, label="Crops per image", min=1, max=10000, group="Data",
                                 tooltip="Random crops (random scale and position, random horizontal flip) "
                                         "drawn from each training image per epoch.")
    colour_jitter: float = param(0.0, label="Colour jitter", min=0.0, max=1.0, step=0.05, group="Data",
                                 tooltip="Random contrast, brightness and saturation changes of the training "
                                         "crops up to this fraction (0 = off).")
    rotate: bool = param(False, label="Random 90° rotations", group="Data",
                         tooltip="Also rotate training crops by a random multiple of 90°.")
    held_out: float = param(0.1, label="Held-out fraction", min=0.0, max=0.9, step=0.05, group="Data",
                            tooltip="Images kept out of training (at least one when there are two or more); "
                                    "their error is reported after every epoch.")
    width: float = param(0.25, label="Width", min=WIDTH_MIN, max=WIDTH_MAX, step=0.05, group="Network",
                         tooltip="Channel multiplier of the paper's networks (1 = the paper's widths; "
                                 "0.25 trains ~10× faster on a CPU).")
    autoencoder: bool = param(False, label="Autoencoder (fine-tune encoder)", group="Network",
                              tooltip="Train the CNN up to the layer together with the decoder (paper 001 §5.2); "
                                      "CNN representations only.")
    seed: int = param(0, label="Seed", min=0, max=2**31 - 1, group="Training",
                      tooltip="Seeds the split, the crops and the initial weights.")
    pixel_weight: float = param(1.0, label="Pixel loss weight", min=0.0, max=1000.0, step=0.1, group="Loss",
                                tooltip="Weight of the mean squared pixel error ‖y − x‖² (paper 001's loss).")
    feature_weight: float = param(0.0, label="Feature loss weight", min=0.0, max=1000.0, step=0.1, group="Loss",
                                  tooltip="Weight of the feature-space loss ‖C(y) − C(x)‖² / ‖C(x)‖² (paper 001, "
                                          "appendix A): reconstructions are compared in a comparator's features.")
    comparator: str = param("representation", label="Feature loss in", choices=COMPARATORS, group="Loss",
                            tooltip="The comparator C of the feature loss: the inverted representation itself, "
                                    "or a layer of the embedded EfficientNet-Lite0.")
    adversarial_weight: float = param(0.0, label="Adversarial loss weight", min=0.0, max=1000.0, step=0.01,
                                      group="Loss",
                                      tooltip="Weight of the adversarial term (paper 001, appendix A: a natural-image "
                                              "prior learned as in GANs): a discriminator, conditioned on the "
                                              "features, is trained alternately to tell photos from "
                                              "reconstructions (hinge loss, spectral normalisation), and the "
                                              "decoder to fool it.  0 = off.")
    discriminator_lr: float = param(2e-4, label="Discriminator LR", min=1e-7, max=1.0, group="Loss",
                                    tooltip="Adam learning rate of the discriminator (β 0.5/0.999); decays with "
                                            "the decoder's.")
    precision: str = param("fp32", label="Precision", choices=PRECISIONS, group="Speed",
                           tooltip="Arithmetic of the decoder's forward and backward passes: float32, or bf16 "
                                   "autocast (weights, Adam and the loss stay float32; the features are "
                                   "computed in float32).  bf16 is for GPUs: on the CPU it measured 5–15× "
                                   "slower (benchmarks/bench_decoder.py --precision-rows).")
    channels_last: bool = param(False, label="Channels-last layout", group="Speed",
                                tooltip="Run the decoder's convolutions in the channels-last memory layout "
                                        "(on the CPU: within 4 % of the default, measured).")
    preview_every: int = param(10, label="Preview every", min=1, max=100000, group="Display",
                               tooltip="Send sample reconstructions every k steps.")


TRAIN_PRESETS: Presets[TrainParams] = Presets(TrainParams)
TRAIN_PRESETS.add("default", TrainParams())
TRAIN_PRESETS.add("paper", TrainParams(width=1.0, size=256, crops_per_image=1, epochs=15))


def lr_factor(p: TrainParams, progress: float) -> float:
    """Multiplier of the learning rate at ``progress`` ∈ [0, 1] of training."""
    if progress <= p.decay_from or p.decay_from >= 1:
        return 1.0
    t = (progress - p.decay_from) / (1 - p.decay_from)
    return float(max(p.final_lr, 1e-12) ** t)
