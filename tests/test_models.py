import numpy as np
import pytest

from tfpose.models import build_model, list_models
from tests.conftest import TINY_INPUT

SMALL = {"peleenet_duc": dict(growth=16, stage_layers=(1, 1, 1, 1), duc_channels=(32, 16, 16)),
         "hourglass": dict(stacks=2, channels=32, depth=2)}


@pytest.mark.parametrize("name", [s.name for s in list_models()])
def test_every_registered_model_builds_small_with_the_right_output(name):
    model = build_model(name, 17, TINY_INPUT, **SMALL.get(name, {}))
    out = model(np.zeros((2, TINY_INPUT[1], TINY_INPUT[0], 3), np.float32))
    assert out.shape == (2, TINY_INPUT[1] // 4, TINY_INPUT[0] // 4, 17)


def test_peleenet_duc_matches_park_et_al_size():
    model = build_model("peleenet_duc", 17, (192, 256))
    decoder = sum(l.count_params() for l in model.layers if l.name.startswith("duc") or l.name == "heatmaps")
    assert abs(model.count_params() / 2.80e6 - 1) < 0.15      # paper: 2.80 M
    assert abs(decoder / 0.71e6 - 1) < 0.15                   # paper: DUC 0.71 M


def test_hourglass_intermediate_outputs_one_per_stack():
    model = build_model("hourglass", 17, TINY_INPUT, intermediate=True, **SMALL["hourglass"])
    assert len(model.outputs) == 2


def test_unknown_model_or_parameter_suggests_the_nearest():
    with pytest.raises(KeyError, match="did you mean 'peleenet_duc'"):
        build_model("peleenet_dcu")
    with pytest.raises(TypeError, match="did you mean 'stacks'"):
        build_model("hourglass", stack=2)


def test_peleenet_rejects_input_not_divisible_by_32():
    with pytest.raises(ValueError, match="divisible by 32"):
        build_model("peleenet_duc", 17, (48, 64))
