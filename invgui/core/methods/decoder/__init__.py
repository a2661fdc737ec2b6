"""The decoder method (Dosovitskiy & Brox, CVPR 2016): train an up-convolutional network f with
min Σ‖x_i − f(Φ(x_i))‖² on a folder of images, then reconstruct with one forward pass.

Works for every representation, differentiable or not (LBP, sparse SIFT): only the decoder gets
gradients.  ``train`` and ``run`` are generators of events like the optimisation method, so the
CLI, the GUI worker and tests consume them the same way.

Checkpoints are dicts of tensors and plain values, loaded with ``weights_only=True``:
``{"invgui_decoder": 1, "meta": {...}, "decoder": state_dict, "encoder": state_dict | None,
"optimizer": state_dict, "epoch": n}``.  ``meta`` says what the decoder inverts (representation,
layer, its parameters, input size, normalisation), how it was built (architecture, width) and
trained (data, sizes, epochs, held-out error, versions); loading refuses a checkpoint whose
representation, layer or parameters do not match, saying what differs.

The package: ``nets`` (the architectures), ``data`` (image folders, crops made in DataLoader
workers, the cache),
``checkpoint`` (save, load, check; the shipped decoders), ``train`` and ``run``.
"""

import sys

from . import nets
from .checkpoint import (
                         FORMAT,
                         MAX_FEATURE_VALUES,
                         DecoderError,
                         Loaded,
                         check_match,
                         check_meta,
                         decoder_file,
                         find_shipped,
                         load_checkpoint,
                         save_checkpoint,
                         shipped_decoders,
                         shipped_for,
                         shipped_layers,
                         training_loss,
)
from .data import CACHE_SIDE, IMAGE_SUFFIXES, ImageSet, default_workers, list_images, split
from .run import prepare, reconstruct, run
from .train import MAX_HELD_OUT, PRECISIONS, TRAIN_PRESETS, TrainParams, lr_factor, speed_settings, train

# The module (the name ``train`` is the function): for benchmarks that build its training step.
train_module = sys.modules[__name__ + ".train"]

__all__ = ["nets", "FORMAT", "MAX_FEATURE_VALUES", "DecoderError", "Loaded", "check_match", "check_meta",
           "decoder_file", "find_shipped", "load_checkpoint", "save_checkpoint", "shipped_decoders", "shipped_for",
           "shipped_layers",
           "training_loss", "CACHE_SIDE", "IMAGE_SUFFIXES",
           "ImageSet", "default_workers", "list_images", "split", "prepare", "reconstruct", "run", "MAX_HELD_OUT",
           "PRECISIONS", "TRAIN_PRESETS", "TrainParams", "lr_factor", "speed_settings", "train", "train_module"]
