import numpy as np
import pytest

from tfpose.errors import InputError
from tfpose.models import build_model, list_models
from tests.conftest import TINY_INPUT


@pytest.mark.parametrize("name", [s.name for s in list_models()])
def test_every_registered_model_builds_small_with_the_right_output(name):
    spec = [s for s in list_models() if s.name == name][0]
    model = build_model(name, 17, TINY_INPUT, **spec.tiny)
    out = model(np.zeros((2, TINY_INPUT[1], TINY_INPUT[0], 3), np.float32))
    assert out.shape == (2, TINY_INPUT[1] // 4, TINY_INPUT[0] // 4, 17)
    assert model.count_params() < 600_000, "the tiny configuration should stay tiny"


def test_hourglass_intermediate_outputs_one_per_stack():
    model = build_model("hourglass", 17, TINY_INPUT, intermediate=True, stacks=2, channels=32, depth=2)
    assert len(model.outputs) == 2


def test_every_teacher_accepts_intermediate():
    for spec in (s for s in list_models() if s.role == "teacher"):
        model = build_model(spec.name, 17, TINY_INPUT, intermediate=True, **spec.tiny)
        assert 1 <= len(model.outputs) and model.outputs[-1].shape[1:] == (16, 16, 17)


def test_unknown_model_or_parameter_suggests_the_nearest():
    with pytest.raises(InputError, match="did you mean 'peleenet_duc'"):
        build_model("peleenet_dcu")
    with pytest.raises(InputError, match="did you mean 'stacks'"):
        build_model("hourglass", stack=2)


def test_peleenet_rejects_input_not_divisible_by_32():
    with pytest.raises(ValueError, match="divisible by 32"):
        build_model("peleenet_duc", 17, (48, 64))
