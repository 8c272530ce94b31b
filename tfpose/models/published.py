"""Sizes the papers publish for our registered configurations: what `tfpose models`, the zoo benchmark and the
tests compare against. GFLOPs are the papers' own (Park et al.: 2 x MACs; see tfpose.flops)."""

from __future__ import annotations

from dataclasses import dataclass, field

PARK = "Park et al. 2021"


@dataclass(frozen=True)
class Published:
    model: str                                  # registry name
    params_m: float                             # millions of parameters
    gflops: float | None                        # the paper's GFLOPs
    source: str
    config: dict = field(default_factory=dict)  # builder parameters of the published configuration
    input_size: tuple[int, int] = (192, 256)    # (W, H) the figure was measured at
    part: tuple[str, ...] = ()                  # layer-name prefixes, when the figure covers part of the model
    note: str = ""

    @property
    def label(self) -> str:
        config = " ".join(f"{k}={v}" for k, v in self.config.items())
        return " ".join(filter(None, [self.model, config, self.part and "(decoder)"]))


PUBLISHED: tuple[Published, ...] = (
    Published("peleenet_duc", 2.80, 1.49, PARK),
    Published("peleenet_duc", 0.71, 0.47, PARK, part=("duc", "heatmaps"), note="DUC decoder alone"),
    Published("peleenet_duc", 4.98, 9.19, PARK, config=dict(head="deconv"), part=("deconv", "heatmaps"),
              note="deconv(256, 256, 256) decoder; Park et al. count transposed convs per output cell (4x ours)"),
    Published("shufflenetv2", 2.73, 1.26, PARK, note="with DUC"),
    Published("mobilenetv3_large", 3.94, 1.36, PARK, note="with DUC"),
    Published("mobilenetv2", 4.54, 2.12, PARK, note="with DUC"),
    Published("mobilenetv1", 4.69, 2.11, PARK, note="with DUC"),
    Published("mnasnet", 5.42, 2.14, PARK, note="with DUC"),
    Published("hourglass", 25.6, 26.2, PARK, config=dict(stacks=8), input_size=(256, 256),
              note="8-stage teacher; its 26.2 'GFLOPs' match our MACs, not 2 x MACs"),
    Published("simplebaseline", 34.0, 8.9, "Xiao et al. 2018",
              note="ResNet-50; the paper's GFLOPs are multiply-adds for the ResNet (its R-101 minus R-50 step, 3.5, "
                   "is our 3.6 GMACs), its head counted its own way"),
    Published("simplebaseline", 53.0, 12.4, "Xiao et al. 2018", config=dict(depth=101)),
    Published("simplebaseline", 68.6, 15.7, "Xiao et al. 2018", config=dict(depth=152)),
)
