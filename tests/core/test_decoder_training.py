"""Decoder training at scale: the DataLoader pipeline (worker processes, lazily read folders,
reproducible crops whatever the number of workers or processes) and DistributedDataParallel
through torchrun with gloo on CPU, resumed on another number of processes."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from invgui.core import representations as R
from invgui.core.events import Result, Status
from invgui.core.files import save_png
from invgui.core.images import load_image
from invgui.core.methods import decoder as D
from invgui.core.methods.decoder import data as data_mod

TINY = D.TrainParams(epochs=1, batch=4, size=32, crops_per_image=2, width=0.05, preview_every=1)


def train_all(*args, **kw):
    events = list(D.train(*args, **kw))
    return events, events[-1]


def weights(path) -> dict[str, torch.Tensor]:
    return D.load_checkpoint(path).net.state_dict()


def test_every_process_count_sees_the_same_global_batches():
    one = data_mod.GlobalBatches(10, 3, 8, seed=5)
    for world in (2, 3, 8):
        shares = [data_mod.GlobalBatches(10, 3, 8, seed=5, rank=r, world=world) for r in range(world)]
        for epoch in (0, 4):
            for b in [one, *shares]:
                b.set_epoch(epoch)
            joined = [sum(parts, []) for parts in zip(*[list(s) for s in shares], strict=True)]
            assert joined == list(one)
    one.set_epoch(0)
    keys = [k for batch in one for k in batch]
    assert len(keys) == one.steps * 8 == 32                        # ceil(30 / 8) whole batches
    counts = np.bincount([k[0] for k in keys[:30]], minlength=10)
    assert (counts == 3).all()                                     # each image crops_per_image times
    with pytest.raises(ValueError, match="cannot be shared by 9 processes"):
        data_mod.GlobalBatches(10, 3, 8, seed=5, rank=0, world=9)


def test_crops_do_not_depend_on_the_number_of_workers(photos, tmp_path):
    _, a = train_all(R.get("hog"), None, photos / "train", tmp_path / "w0.pt", TINY, workers=0)
    events, b = train_all(R.get("hog"), None, photos / "train", tmp_path / "w2.pt", TINY, workers=2)
    assert any(isinstance(e, Status) and "2 data worker process(es)" in e.message for e in events)
    wa, wb = weights(tmp_path / "w0.pt"), weights(tmp_path / "w2.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.history["train"] == b.history["train"]


def test_a_big_folder_is_read_lazily_by_the_workers(photos, tmp_path, monkeypatch):
    # Over PRELOAD images, nothing is decoded up front; the unreadable file is met by a worker,
    # reported back with its batch and counted once, however often it is drawn.
    monkeypatch.setattr(data_mod.ImageSet, "PRELOAD", 2)
    big = tmp_path / "big"
    big.mkdir()
    for name in ("astronaut", "rocket", "camera", "coins", "chelsea"):
        save_png(big / f"{name}.png", load_image(f"sample:{name}")[::8, ::8])
    (big / "broken.jpg").write_bytes(b"not a jpeg at all")
    p = dataclasses.replace(TINY, epochs=2, crops_per_image=4, held_out=0.0)
    sets = data_mod.ImageSet(data_mod.list_images(big), 32)
    assert sets.lazy and not sets.images and sets.paths.dtype.kind == "S"      # one bytes array, no list
    events, res = train_all(R.get("hog"), None, big, tmp_path / "lazy.pt", p, workers=1)
    assert isinstance(res, Result) and res.metrics["skipped"] == 1
    assert any(isinstance(e, Status) and "while training" in e.message and "broken.jpg" in e.message
               for e in events)
    assert D.load_checkpoint(tmp_path / "lazy.pt").meta["training"]["skipped"] == 1


def test_large_jpegs_are_decoded_at_a_reduced_scale(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((800, 1200, 3)) * 255).astype(np.uint8)).save(tmp_path / "big.jpg")
    from invgui.core.images import load_image_uint8

    assert load_image(tmp_path / "big.jpg").shape == (800, 1200, 3)
    small = load_image_uint8(tmp_path / "big.jpg", min_side=128)
    assert small.shape == (200, 300, 3)                   # 1/4 scale: the shorter side stays ≥ 128
    assert load_image_uint8(tmp_path / "big.jpg", min_side=500).shape == (800, 1200, 3)
    # load_image also resizes what is still larger to the shorter side asked for.
    assert load_image(tmp_path / "big.jpg", min_side=128).shape == (128, 192, 3)


def torchrun(n: int, args: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "INVGUI_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
           "-m", "invgui", "train-decoder", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)


@pytest.mark.slow
@pytest.mark.numerics
def test_torchrun_gloo_trains_like_one_process_and_resumes_on_another_count(photos, tmp_path):
    common = ["--model", "hog", "--data", str(photos / "train"), "--size", "32", "--width", "0.05",
              "--batch", "4", "--crops-per-image", "2", "--device", "cpu", "--workers", "0", "--quiet"]
    two = tmp_path / "two.pt"
    done = torchrun(2, [*common, "--epochs", "2", "--out", str(two)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1                       # process 0 alone reports
    meta = D.load_checkpoint(two).meta
    assert meta["training"]["world_size"] == 2 and meta["epochs"] == 2
    # The same training on one process: the same global batches, so (up to the order of float sums
    # in the all-reduce) the same decoder.
    _, single = train_all(R.get("hog"), None, photos / "train", tmp_path / "one.pt",
                          dataclasses.replace(TINY, epochs=2), workers=0)
    w1, w2 = weights(tmp_path / "one.pt"), weights(two)
    assert max(float((w1[k] - w2[k]).abs().max()) for k in w1) < 1e-4
    assert single.metrics["held_out_mse"] == pytest.approx(meta["held_out_mse"], rel=1e-3)
    # Resume the two-process checkpoint on one process (the window's or a laptop's), one epoch on.
    events, res = train_all(R.get("hog"), None, photos / "train", two, dataclasses.replace(TINY, epochs=3),
                            resume=two, workers=0)
    assert any(isinstance(e, Status) and "by 2 process(es), now 1" in e.message for e in events)
    loaded = D.load_checkpoint(two)
    assert loaded.epoch == 3 and loaded.meta["training"]["world_size"] == 1
    *_, rec = D.run(R.get("hog"), load_image("sample:coffee"), None, two)
    assert rec.images.shape == (1, 32, 32, 3) and np.isfinite(rec.images).all() and rec.images.std() > 0


def test_feature_space_loss_terms_are_trained_and_reported(photos, tmp_path):
    # Paper 001 appendix A: the loss compares reconstructions in a comparator's features too.
    p = dataclasses.replace(TINY, feature_weight=0.5, comparator="representation")
    events, res = train_all(R.get("hog"), None, photos / "train", tmp_path / "f.pt", p, workers=0)
    steps = [e for e in events if hasattr(e, "losses")]
    for s in steps:
        assert {"train", "pixel", "feature_space"} <= set(s.losses)
        assert s.losses["train"] == pytest.approx(s.losses["pixel"] + 0.5 * s.losses["feature_space"], rel=1e-5)
    assert len(res.history["feature_space"]) == len(steps)
    meta = D.load_checkpoint(tmp_path / "f.pt").meta
    assert meta["training"]["params"]["feature_weight"] == 0.5
    # A different loss trains a different decoder; a comparator network works at a small crop size.
    _, plain = train_all(R.get("hog"), None, photos / "train", tmp_path / "p.pt", TINY, workers=0)
    assert plain.history["train"] != res.history["train"] and "feature_space" not in plain.history
    lite = dataclasses.replace(TINY, pixel_weight=0.0, feature_weight=1.0, comparator="efficientnet_lite0:blocks.1")
    _, r2 = train_all(R.get("lbp"), None, photos / "train", tmp_path / "l.pt", lite, workers=0)
    assert all(np.isfinite(r2.history["feature_space"])) and r2.history["pixel"]


def test_feature_loss_refusals_say_why(photos, tmp_path):
    with pytest.raises(R.RepresentationError, match="not differentiable"):
        train_all(R.get("lbp"), None, photos / "train", tmp_path / "x.pt",
                  dataclasses.replace(TINY, feature_weight=1.0), workers=0)
    with pytest.raises(ValueError, match="every loss weight is 0"):
        train_all(R.get("hog"), None, photos / "train", tmp_path / "x.pt",
                  dataclasses.replace(TINY, pixel_weight=0.0), workers=0)


@pytest.mark.numerics
def test_bf16_autocast_and_channels_last_train_the_same_decoder_closely(photos, tmp_path):
    # The speed options change the arithmetic, not the training: the same crops, a loss within bf16's
    # precision of float32's, the setting recorded, and the checkpoint an ordinary float32 decoder.
    _, ref = train_all(R.get("hog"), None, photos / "train", tmp_path / "a.pt", TINY, workers=0)
    events, fast = train_all(R.get("hog"), None, photos / "train", tmp_path / "b.pt",
                             dataclasses.replace(TINY, precision="bf16", channels_last=True), workers=0)
    assert any(isinstance(e, Status) and "bf16 autocast; channels-last" in e.message for e in events)
    assert fast.history["train"][0] == pytest.approx(ref.history["train"][0], rel=0.05)
    assert fast.history["train"] != ref.history["train"]               # bf16 did run
    loaded = D.load_checkpoint(tmp_path / "b.pt")
    assert loaded.meta["training"]["precision"] == "bf16" and loaded.meta["training"]["channels_last"] is True
    assert all(t.dtype == torch.float32 for t in loaded.net.state_dict().values())
    *_, rec = D.run(R.get("hog"), load_image("sample:coffee"), None, tmp_path / "b.pt")
    assert np.isfinite(rec.images).all() and rec.images.std() > 0
    # channels-last alone is float32 arithmetic in another layout: the same losses up to rounding.
    _, last = train_all(R.get("hog"), None, photos / "train", tmp_path / "c.pt",
                        dataclasses.replace(TINY, channels_last=True), workers=0)
    assert last.history["train"] == pytest.approx(ref.history["train"], rel=1e-4)
    assert D.load_checkpoint(tmp_path / "c.pt").meta["training"]["precision"] == "fp32"


ADV = dataclasses.replace(TINY, adversarial_weight=0.1, epochs=2)


def test_adversarial_term_trains_a_critic_alternately_and_resumes_with_it(photos, tmp_path):
    # Paper 001 appendix A: a learned prior.  Every step reports the decoder's terms and the
    # critic's hinge loss; the critic is saved with the decoder so --resume continues both.
    events, res = train_all(R.get("hog"), None, photos / "train", tmp_path / "a.pt", ADV, workers=0)
    steps = [e for e in events if hasattr(e, "losses")]
    for s in steps:
        assert {"train", "pixel", "adversarial", "discriminator"} <= set(s.losses)
        assert s.losses["train"] == pytest.approx(s.losses["pixel"] + 0.1 * s.losses["adversarial"], rel=1e-5)
        assert s.losses["adversarial"] > 0 and 0 <= s.losses["discriminator"] <= 20
    assert len(res.history["discriminator"]) == len(steps)
    loaded = D.load_checkpoint(tmp_path / "a.pt")
    assert loaded.discriminator is not None and loaded.discriminator_optimizer
    assert loaded.meta["training"]["params"]["adversarial_weight"] == 0.1
    # The critic learns: its weights moved from the seeded start.
    torch.manual_seed(ADV.seed + 1)
    fresh = D.nets.Discriminator(tuple(loaded.meta["feature_shape"]), loaded.meta["width"]).state_dict()
    moved = [k for k in fresh if k.endswith("original") and not torch.equal(fresh[k], loaded.discriminator[k])]
    assert moved
    # Resume for a third epoch with the critic; without the term, the same file resumes as a plain decoder.
    more = dataclasses.replace(ADV, epochs=3)
    events, res3 = train_all(R.get("hog"), None, photos / "train", tmp_path / "a.pt", more, workers=0,
                             resume=tmp_path / "a.pt")
    assert not any(isinstance(e, Status) and "no discriminator" in e.message for e in events)
    assert D.load_checkpoint(tmp_path / "a.pt").epoch == 3
    # A plain checkpoint resumed with the term gets a new critic, and says so.
    _, _ = train_all(R.get("hog"), None, photos / "train", tmp_path / "p.pt", TINY, workers=0)
    events, _ = train_all(R.get("hog"), None, photos / "train", tmp_path / "p.pt",
                          dataclasses.replace(ADV, epochs=2), workers=0, resume=tmp_path / "p.pt")
    assert any(isinstance(e, Status) and "no discriminator" in e.message for e in events)
    # The shipped form (half precision, no optimiser) leaves the critic out; it reconstructs.
    D.save_checkpoint(tmp_path / "s.pt", loaded.net, {k: v for k, v in loaded.meta.items() if k != "file"},
                      half=True)
    assert D.load_checkpoint(tmp_path / "s.pt").discriminator is None
    *_, rec = D.run(R.get("hog"), load_image("sample:coffee"), None, tmp_path / "s.pt")
    assert np.isfinite(rec.images).all()


def test_a_collapsing_discriminator_stops_the_run_and_keeps_the_last_good_checkpoint(photos, tmp_path,
                                                                                      monkeypatch):
    T = D.train_module
    steps_per_epoch = 2                           # 4 readable photos × 2 crops / batch 4
    monkeypatch.setattr(T, "COLLAPSE_LOSS", 1e9)  # every step counts as collapsing
    monkeypatch.setattr(T, "COLLAPSE_STEPS", steps_per_epoch + 1)
    out = tmp_path / "c.pt"
    with pytest.raises(FloatingPointError, match=r"discriminator collapsed at step 3.*after epoch 1, is kept in"):
        train_all(R.get("hog"), None, photos / "train", out, ADV, workers=0)
    assert D.load_checkpoint(out).epoch == 1
    # Collapse before any checkpoint: said as such.
    monkeypatch.setattr(T, "COLLAPSE_STEPS", 1)
    with pytest.raises(FloatingPointError, match="no checkpoint had been written yet"):
        train_all(R.get("hog"), None, photos / "train", tmp_path / "d.pt", ADV, workers=0)
    assert not (tmp_path / "d.pt").exists()
    # The adversarial term alone does not say which image to make: refused with the reason.
    with pytest.raises(ValueError, match="adversarial term alone"):
        train_all(R.get("hog"), None, photos / "train", tmp_path / "e.pt",
                  dataclasses.replace(ADV, pixel_weight=0.0), workers=0)


@pytest.mark.slow
@pytest.mark.numerics
def test_torchrun_gloo_trains_the_adversarial_term_like_one_process(photos, tmp_path):
    # The critic has its own DDP wrapper and optimiser: two processes train decoder and critic as one does.
    args = ["--model", "hog", "--data", str(photos / "train"), "--size", "32", "--width", "0.05", "--batch", "4",
            "--crops-per-image", "2", "--device", "cpu", "--workers", "0", "--quiet", "--epochs", "2",
            "--adversarial-weight", "0.1", "--out", str(tmp_path / "two.pt")]
    done = torchrun(2, args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    train_all(R.get("hog"), None, photos / "train", tmp_path / "one.pt", ADV, workers=0)
    one, two = D.load_checkpoint(tmp_path / "one.pt"), D.load_checkpoint(tmp_path / "two.pt")
    a, b = one.net.state_dict(), two.net.state_dict()
    # The decoder: the all-reduce sums the gradient in another order, a rounding difference that
    # stays small (measured ≤ 1.1e-5 under every kernel setting tried; one lr step is 1e-3).
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4
    # The critic cannot be compared coordinate by coordinate: a sample near its hinge's kink, and
    # Adam's normalisation of near-zero gradients, turn rounding into steps of ~lr, and which
    # coordinates take them depends on the CPU's kernels (an AVX-512 machine: mean 2.7e-6 where
    # this one had 1.1e-7).  Two bounds that do not depend on the kernels:
    # - Adam moves a coordinate by at most lr·√t at its step t (Cauchy–Schwarz on the
    #   bias-corrected moments), so two runs differ by at most 2·lr·Σ√t over the critic's steps;
    # - the two critics' difference against how far they moved from their seeded start: steps in
    #   unrelated directions (an un-synchronised critic) give a ratio near √2; the synchronised
    #   ones measured 0.009 (these kernels) and 0.020 (ATEN_CPU_CAPABILITY=default, oneDNN SSE4.1).
    steps = ADV.epochs * 2                          # 4 readable photos × 2 crops / batch 4 per epoch
    torch.manual_seed(ADV.seed + 1)                 # the critic's seeded start (as train() makes it)
    start = D.nets.Discriminator(tuple(one.meta["feature_shape"]), one.meta["width"]).state_dict()
    keys = [k for k in start if k.endswith(("original", "bias"))]       # its parameters, not power-iteration buffers
    a, b = one.discriminator, two.discriminator
    diff = torch.cat([(a[k] - b[k]).flatten() for k in keys])
    moved = torch.cat([(a[k] - start[k]).flatten() for k in keys])
    assert float(diff.abs().max()) <= 2 * ADV.discriminator_lr * sum(math.sqrt(t) for t in range(1, steps + 1))
    assert float(moved.norm()) > 0 and float(diff.norm() / moved.norm()) < 0.1


def test_init_fine_tunes_a_trained_decoder_as_a_new_run(photos, tmp_path):
    # Start from a decoder's weights (a shipped one, say) with other losses: epoch 0, a fresh optimiser,
    # the decoder's width and size kept whatever the flags say.
    base = tmp_path / "base.pt"
    train_all(R.get("hog"), None, photos / "train", base, TINY, workers=0)
    events, res = train_all(R.get("hog"), None, photos / "train", tmp_path / "ft.pt",
                            dataclasses.replace(ADV, width=0.5, epochs=1), workers=0, init=base)
    msgs = [e.message for e in events if isinstance(e, Status)]
    assert any("starting from the weights of" in m for m in msgs) and any("width 0.5 → 0.05" in m for m in msgs)
    ft = D.load_checkpoint(tmp_path / "ft.pt")
    assert ft.epoch == 1 and ft.meta["width"] == 0.05 and ft.discriminator is not None
    assert ft.meta["training"]["init"] == str(base)                     # where it started, for the record
    # It really started there: its first loss is the base decoder's level, not a fresh network's.
    _, fresh = train_all(R.get("hog"), None, photos / "train", tmp_path / "fresh.pt",
                         dataclasses.replace(TINY, epochs=1), workers=0)
    assert res.history["pixel"][0] < fresh.history["train"][0]
    with pytest.raises(ValueError, match="either resume"):
        train_all(R.get("hog"), None, photos / "train", tmp_path / "x.pt", TINY, workers=0, init=base, resume=base)
    with pytest.raises(D.DecoderError, match="trained for"):
        train_all(R.get("lbp"), None, photos / "train", tmp_path / "x.pt", TINY, workers=0, init=base)


def test_shipped_decoders_of_several_losses_are_listed_and_named(tmp_path, monkeypatch, capsys):
    from invgui.core.methods.decoder import checkpoint as C

    shipped = D.shipped_decoders()
    loaded = D.load_checkpoint(shipped["hog"])
    meta = {k: v for k, v in loaded.meta.items() if k != "file"}
    adv = {**meta, "training": {**meta["training"], "params": {**meta["training"]["params"],
                                                              "adversarial_weight": 0.01}}}
    (tmp_path / "decoders").mkdir()
    D.save_checkpoint(tmp_path / "decoders" / "hog-adversarial.pt", loaded.net, adv, half=True)   # sorts first
    D.save_checkpoint(tmp_path / "decoders" / "hog.pt", loaded.net, meta, half=True)
    monkeypatch.setattr(C, "resource", lambda *parts: tmp_path.joinpath(*parts))
    assert set(D.shipped_decoders()) == {"hog", "hog-adversarial"}
    assert D.find_shipped("hog", "hog").name == "hog.pt"
    assert [(p.name, loss) for p, loss in D.shipped_for("hog", "hog")] == [("hog.pt", "pixel"),
                                                                          ("hog-adversarial.pt", "pixel+adversarial")]
    assert D.shipped_for("hog", "blocks.1") == [] and D.find_shipped("lbp", "lbp") is None
    # Either is named by its name on the command line; a file of that name wins over a shipped one.
    assert D.decoder_file("hog-adversarial") == tmp_path / "decoders" / "hog-adversarial.pt"
    assert D.decoder_file(tmp_path / "decoders" / "hog.pt") == tmp_path / "decoders" / "hog.pt"
    assert D.decoder_file("no-such") == Path("no-such")
    from invgui.cli import main

    assert main(["layers", "hog"]) == 0
    out = capsys.readouterr().out
    assert "hog                              layer hog, pixel loss" in out
    assert "hog-adversarial                  layer hog, pixel+adversarial loss" in out
    assert main(["invert", "--model", "hog", "--method", "decoder", "--decoder", "hog-adversarial", "-q",
                 "--out", str(tmp_path / "adv.png")]) == 0
    assert json.loads((tmp_path / "adv.json").read_text())["decoder"].endswith("hog-adversarial.pt")
    assert main(["invert", "--model", "hog", "--method", "decoder", "--decoder", "no-such", "-q",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "no-such" in capsys.readouterr().err
