"""Shared fixtures.  Qt runs offscreen; everything runs on the CPU with small inputs."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# INVGUI_TEST_THREADS: .ci/run runs the numerically sensitive tests again on one thread, where
# ATen and oneDNN split (and so round) reductions differently than on two.
torch.set_num_threads(int(os.environ.get("INVGUI_TEST_THREADS") or max(1, min(2, os.cpu_count() or 1))))


@pytest.fixture(autouse=True)
def invgui_home(tmp_path, monkeypatch):
    """Autosave, settings and recent files of the window go to a fresh folder in every test."""
    home = tmp_path / "invgui-home"
    monkeypatch.setenv("INVGUI_HOME", str(home))
    monkeypatch.setenv("INVGUI_DATA", str(tmp_path / "invgui-data"))    # the dialogs' folders (ui/widgets/folders.py)
    return home


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


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """A folder of a few small photos (one unreadable file among them) and a held-out folder."""
    from invgui.core.files import save_png
    from invgui.core.images import load_image

    root = tmp_path_factory.mktemp("photos")
    (root / "train" / "sub").mkdir(parents=True)
    (root / "held").mkdir()
    for i, name in enumerate(("astronaut", "rocket", "camera", "coins")):
        img = load_image(f"sample:{name}")[::8, ::8]
        save_png(root / "train" / ("sub" if i % 2 else "") / f"{name}.png", img)
    (root / "train" / "broken.jpg").write_bytes(b"not a jpeg at all")
    for name in ("chelsea", "coffee"):
        save_png(root / "held" / f"{name}.png", load_image(f"sample:{name}")[::8, ::8])
    return root


@pytest.fixture(scope="session")
def tiny_hog_decoder(photos, tmp_path_factory):
    """A HOG decoder trained for one tiny epoch (32-px crops, width 0.05)."""
    from invgui.core import representations as R
    from invgui.core.methods import decoder as D

    out = tmp_path_factory.mktemp("decoders") / "hog-tiny.pt"
    p = D.TrainParams(epochs=1, batch=4, size=32, crops_per_image=2, width=0.05, preview_every=1)
    for _ in D.train(R.get("hog"), None, photos / "train", out, p):
        pass
    return out


class FakeGraph:
    """A CUDA graph's stand-in (no GPU in CI): its replay is the eager step (so a healthy "graph"
    gives exactly the eager run's numbers), with failures injected into the replay (``fail_at``)
    and its result (``corrupt_at``)."""

    def __init__(self, stepper, fail_at=None, corrupt_at=None):
        self.stepper, self.fail_at, self.corrupt_at, self.calls = stepper, fail_at, corrupt_at, 0

    def replay(self):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("CUDA error: an illegal memory access was encountered (injected)")
        self.stepper.step()
        if self.corrupt_at is not None and self.calls >= self.corrupt_at:
            import torch

            with torch.no_grad():
                self.stepper.u.add_(0.5)            # a replay that computes something else


@pytest.fixture
def fake_graph():
    """The :class:`FakeGraph` class (conftest modules are not imported by tests)."""
    return FakeGraph


@pytest.fixture(scope="session")
def collapsed():
    """A real run that fails quietly (eval_helpers.COLLAPSE): "done", its representation error risen."""
    from eval_helpers import COLLAPSE

    from invgui.core.request import RunRequest, execute, results

    return results(execute(RunRequest(layer="blocks.1", params=COLLAPSE)))[0]
