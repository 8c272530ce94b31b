import pytest

from tfpose.artifacts import atomic_path, write_text


def test_failed_write_leaves_the_old_artifact_and_no_temporary(tmp_path):
    target = tmp_path / "model.tflite"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


def test_temporary_keeps_the_extension_and_replaces_on_success(tmp_path):
    target = tmp_path / "sub" / "student.keras"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".keras" and tmp.name.startswith(".") and tmp.parent == target.parent
        tmp.write_text("new")
    assert target.read_text() == "new" and len(list(target.parent.iterdir())) == 1


def test_directories_are_replaced_whole(tmp_path):
    target = tmp_path / "assets"
    for text in ("first", "second"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "README.md").write_text(text)
    assert (target / "README.md").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["assets"]
