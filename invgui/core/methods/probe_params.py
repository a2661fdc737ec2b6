"""The feature-space probe's parameters and presets, in pure data: the command line's ``--help``
and argument errors and the probe dock's form use them without importing torch.
:mod:`.probe` runs them; :mod:`.manipulate` implements the probes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..params import ParamError, Presets, param

PROBES = ("binarise", "dropout", "dropout-smallest", "binarise-dropout", "binarise-dropout-smallest",
          "top-k", "zero-top-k", "interpolate", "random-histogram", "random-gaussian", "neuron")


@dataclass(frozen=True)
class ProbeParams:
    """A feature-space probe (paper 001 §5.3–5.5); one dock widget / CLI flag each."""

    probe: str = param("binarise", label="Probe", choices=PROBES, group="Probe",
                       tooltip="binarise: signs kept, one magnitude, norm unchanged; dropout: 50 % random or "
                               "smallest entries zeroed, norm restored; top-k / zero-top-k: keep or zero the k "
                               "largest; interpolate: to a second image's features; random-histogram / "
                               "random-gaussian: random feature vectors; neuron: one unit switched on.")
    k: int = param(5, label="k", min=1, max=100000, group="Probe", tooltip="k of top-k (paper: 5).")
    other: str = param("", label="Other image", group="Probe",
                       tooltip="Second image for interpolate (a path or sample:NAME).")
    steps: int = param(8, label="Steps", min=2, max=64, group="Probe",
                       tooltip="Interpolation steps, both ends included.")
    stats_data: str = param("", label="Statistics from", group="Probe",
                            tooltip="Folder of images (or 'samples') for the per-dimension feature statistics of "
                                    "random features and the neuron's default value.")
    count: int = param(4, label="Count", min=1, max=64, group="Probe", tooltip="Random feature vectors to draw.")
    alpha: float = param(2.0, label="Contrast α", min=0.0, max=100.0, step=0.5, group="Probe",
                         tooltip="Random features are multiplied by α (paper: 2).")
    channel: int = param(0, label="Channel", min=0, max=100000, group="Probe", tooltip="The neuron's channel.")
    position: str = param("", label="Position y,x", group="Probe",
                          tooltip="The neuron's cell (empty: the centre of the map).")
    value: float = param(0.0, label="Value", min=0.0, max=1e9, group="Probe",
                         tooltip="The neuron's value (0: its largest over the statistics images, else Φ0's largest).")
    seed: int = param(0, label="Seed", min=0, max=2**31 - 1, group="Probe", tooltip="Seeds dropout and sampling.")
    optimize: bool = param(False, label="Also optimisation", group="Compare",
                           tooltip="Invert every variant by optimisation too (a second row, 'fast' preset).")

    def kwargs(self) -> dict:
        """The options ``manipulate.probe_features`` takes."""
        try:
            position = tuple(int(v) for v in self.position.split(",")) if self.position.strip() else None
        except ValueError:
            raise ParamError(f"Position y,x = {self.position!r}: expected two whole numbers, e.g. 3,5") from None
        if position is not None and (len(position) != 2 or min(position) < 0):
            raise ParamError(f"Position y,x = {self.position!r}: expected two whole numbers ≥ 0, e.g. 3,5")
        return dict(k=self.k, steps=self.steps, count=self.count, alpha=self.alpha, channel=self.channel,
                    position=position, value=self.value or None, seed=self.seed)



PROBE_PRESETS: Presets[ProbeParams] = Presets(ProbeParams)
PROBE_PRESETS.add("binarise", ProbeParams())
PROBE_PRESETS.add("interpolate", ProbeParams(probe="interpolate", other="sample:coffee"))
