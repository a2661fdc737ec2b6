"""Device names: ``auto``, ``cpu``, ``cuda`` and ``cuda:N`` — checked before anything is computed."""

from __future__ import annotations

import re

from .errors import InvguiError


class DeviceError(InvguiError):
    """A device name invgui does not know, or a device this machine does not have."""


def describe(device: str) -> str:
    """What ran, for records: the GPU's name (``NVIDIA H100 80GB HBM3``) or the CPU's thread count."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU, {torch.get_num_threads()} threads"


def resolve_device(name: str) -> str:
    """The torch device for ``name``: ``auto`` is the first GPU when there is one, else the CPU.
    Anything else than ``auto``/``cpu``/``cuda``/``cuda:N`` — or a GPU this machine lacks — is a
    :class:`DeviceError` that says what to use instead."""
    import torch

    text = str(name).strip().lower()
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return "cpu"
    m = re.fullmatch(r"cuda(?::(\d{1,3}))?", text)
    if not m:
        raise DeviceError(f"device {name!r}: use cpu, cuda, cuda:N or auto")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {name!r}: torch sees no CUDA device on this machine; use --device cpu")
    index = int(m.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                          f"(cuda:0…cuda:{torch.cuda.device_count() - 1})")
    return text
