"""Shared fixtures.  Qt runs offscreen; everything runs on the CPU with small inputs."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def effnet():
    from invgui.core import representations as R

    return R.get("efficientnet_lite0")


@pytest.fixture(scope="session")
def alexnet_random():
    from invgui.core import representations as R

    return R.get("alexnet", random_weights=True)


@pytest.fixture(scope="session")
def chelsea():
    from invgui.core.images import load_image

    return load_image("sample:chelsea")


@pytest.fixture()
def no_hub(tmp_path, monkeypatch):
    """An empty torch hub cache, so pretrained torchvision weights are 'missing'."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path / "torch-home" / "hub" / "checkpoints"


def rng_image(h=40, w=56, seed=0):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
