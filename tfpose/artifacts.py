"""Write artifacts atomically: to a temporary name beside the target, renamed only on success; files that belong
together as one set; the records that say what made an artifact; temporaries of killed runs swept away."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import numpy as np

from tfpose.errors import TfposeError, WriteError

# atomic_path's temporaries: ".<stem>.tmp-<pid><suffix>"
TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)(\.[^.]+)?$")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``target``, on error it is removed.

    The temporary name keeps the target's extension, for writers that insist on one (Keras' ``.keras``). An
    OSError while writing (a full disk, a read-only folder) is a WriteError naming ``target``.
    """
    target = Path(target)
    with _naming([target]), _temporary(target) as tmp:
        yield tmp
        os.replace(tmp, target) if not tmp.is_dir() else _replace_dir(tmp, target)


@contextlib.contextmanager
def atomic_paths(*targets: str | os.PathLike) -> Iterator[list[Path]]:
    """``atomic_path`` for files that belong together: once every temporary is written, the old targets are all
    removed and the new ones renamed in order, so an interruption leaves the set without its last files, never a
    new file beside an old one. Put last the file whose presence says the set is complete."""
    with _naming(list(map(Path, targets))), contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(_temporary(Path(t))) for t in targets]
        yield tmps
        for target in map(Path, targets):
            _remove(target)
        for tmp, target in zip(tmps, map(Path, targets)):
            os.replace(tmp, target)


@contextlib.contextmanager
def _naming(targets: list[Path]) -> Iterator[None]:
    """An OSError met while writing ``targets`` becomes a WriteError naming the target it is about: the one whose
    temporary, folder or self it names, else (it names no file) all of them. One about another file, such as an
    input being copied, stays as it is."""
    try:
        yield
    except TfposeError:
        raise
    except OSError as e:
        if e.filename is None:
            raise WriteError(", ".join(map(str, targets)), e) from e
        named = Path(os.fsdecode(e.filename))
        for target in targets:
            tmp = _temporary_name(target)
            if named in (target, tmp) or named in target.parents or tmp in named.parents:
                raise WriteError(target, e) from e
        raise


def _temporary_name(target: Path) -> Path:
    return target.with_name(f".{target.stem}.tmp-{os.getpid()}{target.suffix}")


@contextlib.contextmanager
def _temporary(target: Path) -> Iterator[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(target)
    try:
        yield tmp
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries under ``folder`` that a killed process left (its pid is no longer running);
    returns them. Only pids of this machine mean anything: a folder shared with other hosts must not be swept."""
    stale = [p for p in Path(folder).rglob(".*.tmp-*") if (m := TEMPORARY.match(p.name)) and not _alive(int(m[1]))]
    for path in stale:
        _remove(path)
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:       # another user's process
        return True
    return True


def digest(obj: object) -> str:
    """A short sha256 of a JSON-able value (keys sorted; paths and other objects by their ``str``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def record_path(artifact: str | os.PathLike) -> Path:
    """The record beside an artifact: ``student.keras`` -> ``student.keras.digest.json``."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".digest.json")


def make_record(sections: dict) -> dict:
    """What made an artifact: a digest per section of what it depends on (config sections, input files) and one
    of them all."""
    parts = {name: digest(value) for name, value in sections.items()}
    return {"digest": digest(parts), "sections": parts}


def stale_reason(artifact: str | os.PathLike, record: dict) -> str | None:
    """None when ``artifact`` exists and its record matches ``record``; otherwise why it cannot be reused."""
    artifact = Path(artifact)
    if not artifact.exists():
        return f"{artifact.name} does not exist"
    try:
        old = json.loads(record_path(artifact).read_text())
    except (OSError, ValueError):
        return f"{artifact.name} has no record of what made it"
    if old.get("digest") == record["digest"]:
        return None
    before = old.get("sections", {})
    changed = [name for name, value in record["sections"].items() if before.get(name) != value]
    return f"{artifact.name} was made under another {', '.join(changed) or 'config'}"


def _replace_dir(tmp: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def write_json(target: str | os.PathLike, obj: object) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def hash_persons(digest, persons) -> None:
    """Feed each person's image path, box, keypoints and visibility into the hashlib object ``digest``."""
    for person in persons:
        digest.update(str(person.image_path).encode())
        digest.update(np.asarray(person.box, np.float64).tobytes())
        digest.update(np.asarray(person.keypoints, np.float64).tobytes())
        digest.update(np.asarray(person.visibility, np.int64).tobytes())


def file_content(path: str | os.PathLike) -> str:
    """A short hash of a file's bytes: a copy of the same file, with a new modification time, hashes the same."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()[:16]


def input_files(path: Path) -> list:
    """(name, size, content hash) of a file, or of every file under a folder (names relative to it)."""
    if path.is_file():
        return [(path.name, path.stat().st_size, file_content(path))]
    return sorted((str(f.relative_to(path)), f.stat().st_size, file_content(f)) for f in path.rglob("*") if f.is_file())


def data_state(data_cfg, datasets) -> dict:
    """What a trained model learnt from and was selected on: the data config ``data_cfg`` (a ``DataConfig``), every
    person of ``datasets`` (every training source and dev-val set: image, box, keypoints, visibility) and each image
    file's content (a re-copied dataset is the same data)."""
    persons, images = hashlib.sha256(), {}
    for dataset in datasets:
        hash_persons(persons, dataset.persons)
        images.update((str(p.image_path), None) for p in dataset.persons)
    for name in images:
        images[name] = file_content(name) if os.path.exists(name) else None
    return {"config": asdict(data_cfg), "persons": persons.hexdigest(),
            "images": hashlib.sha256(json.dumps(sorted(images.items())).encode()).hexdigest()}


def teacher_record(cfg, data: dict) -> dict:
    """What a trained teacher.keras depends on, by section (``make_record``): the ``PipelineConfig`` ``cfg``'s teacher,
    codec, skeleton and seed, and ``data`` (``data_state``)."""
    t = cfg.teacher
    return make_record({"teacher": {"source": t.source, "model": asdict(t.model), "train": asdict(t.train)},
                        "data": data, "codec": asdict(cfg.codec), "skeleton": cfg.skeleton,
                        "seed": cfg.seed})


def student_record(cfg, data: dict) -> dict:
    """What student.keras depends on: the distillation config, the teacher (a trained one's record, else its
    config and files), the files the student starts from, and the data (``data_state``), codec, skeleton and seed."""
    d, t = cfg.distill, cfg.teacher
    if t.source == "train":
        teacher = teacher_record(cfg, data)["digest"]
    elif t.source == "none":
        teacher = "none"
    else:
        teacher = {"config": {k: v for k, v in asdict(t).items() if k not in ("train", "model")},
                   "files": input_files(Path(t.path)) if Path(t.path).exists() else None}
    files = [f for f in (d.student.init, d.feature_teacher, *(d.dskd.assistants if d.method == "dskd" else ()))
             if f and Path(f).exists()]
    return make_record({"distill": {k: v for k, v in asdict(d).items() if k != "teacher_cache"},
                        "teacher": teacher, "student files": {f: input_files(Path(f)) for f in files},
                        "data": data, "codec": asdict(cfg.codec), "skeleton": cfg.skeleton,
                        "seed": cfg.seed})
