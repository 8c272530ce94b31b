import pytest

from tfpose.config import load_config
from tfpose.errors import InputError
from tests.conftest import ROOT


def test_every_preset_loads():
    presets = sorted((ROOT / "configs").glob("*.yaml"))
    assert presets, "configs/ has no presets"
    for path in presets:
        load_config(path)


def test_overrides_are_typed_and_nested():
    cfg = load_config(ROOT / "configs/quickstart.yaml", ["distill.alpha=0.8", "codec.input_size=[64, 96]"])
    assert cfg.distill.alpha == 0.8
    assert cfg.codec.input_size == (64, 96)


@pytest.mark.parametrize("override, field, suggestion", [
    ("distil.alpha=1", "distil", "distill"),
    ("distill.alpa=0.3", "distill.alpa", "distill.alpha"),
    ("data.augment.rotaton=10", "data.augment.rotaton", "data.augment.rotation"),
])
def test_unknown_key_names_it_and_suggests_the_nearest(override, field, suggestion):
    with pytest.raises(InputError) as e:
        load_config(ROOT / "configs/quickstart.yaml", [override])
    assert f"field '{field}'" in str(e.value)
    assert f"did you mean '{suggestion}'" in str(e.value)
    assert "quickstart.yaml" in str(e.value)


def test_bad_values_name_the_field(tmp_path):
    with pytest.raises(InputError, match="export.quant.*int9"):
        load_config(None, ["export.quant=int9"])
    with pytest.raises(InputError, match="distill.train.epochs.*expected int"):
        load_config(None, ["distill.train.epochs=2.5"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [1, 2\n")
    with pytest.raises(InputError, match="bad.yaml.*not valid YAML"):
        load_config(bad)
    with pytest.raises(InputError, match="missing.yaml.*not found"):
        load_config(tmp_path / "missing.yaml")
