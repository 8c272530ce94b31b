"""The data stage: a data config's training sources and dev-val sets, read through the registered readers, and
the persons training draws from them with each one's probability."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfpose.artifacts import data_state
from tfpose.codec import HeatmapCodec
from tfpose.config import DataConfig
from tfpose.data.coco import CocoDataset, ImageStore, load_coco
from tfpose.data.readers import read_dataset
from tfpose.data.samples import CropSampler
from tfpose.data.synthetic import ensure_synthetic
from tfpose.errors import InputError
from tfpose.skeleton import Skeleton


@dataclass
class TrainingSource:
    name: str
    dataset: CocoDataset
    weight: float          # share of the training draws, relative to the other sources
    unlabelled: bool       # its boxes without keypoints join the teacher-only crops


def training_persons(sources: list[TrainingSource], min_keypoints: int, with_unlabelled: bool
                     ) -> tuple[list, np.ndarray]:
    """Every training person of every source (with at least ``min_keypoints`` labelled; with ``with_unlabelled``,
    a source's boxes without keypoints too where it allows them), and each one's probability of being drawn (N,):
    a source draws ``weight / sum(weights)`` of the crops, spread evenly over its persons."""
    groups = []
    for source in sources:
        persons = source.dataset.labelled(min_keypoints)
        if with_unlabelled and source.unlabelled:
            persons = persons + source.dataset.unlabelled()
        if persons and source.weight > 0:
            groups.append((persons, source.weight))
    if not groups:
        return [], np.zeros(0)
    total = sum(w for _, w in groups)
    persons = [p for group, _ in groups for p in group]
    probabilities = np.concatenate([np.full(len(g), w / total / len(g)) for g, w in groups])
    return persons, probabilities


def load_datasets(d: DataConfig, k: int) -> tuple[list[TrainingSource], dict[str, CocoDataset]]:
    """The data stage: every training source (the main dataset's training part first) and every dev-val set by
    name ("val", the main dataset's held-out part, first) of the data config ``d``, read with ``k`` keypoints;
    the synthetic dataset is made first when ``d`` asks for it. A training image in a dev-val set, or no labelled
    person at all, is an InputError."""
    root = Path(d.root)
    if d.source == "synthetic":
        s = d.synthetic
        ensure_synthetic(root, s.num_train_images, s.num_val_images, tuple(s.image_size), s.max_people, s.seed)
    train = load_coco(root / d.train_annotations, root / d.train_images, k)
    if d.val_fraction > 0:
        train, val = train.split(d.val_fraction, d.split_seed)
    else:
        val = load_coco(root / d.val_annotations, root / d.val_images, k)

    def read(s, where):
        try:
            return read_dataset(s.format, s.root, s.split, s.annotations or None, s.images or None, k)
        except InputError as e:     # the reader knows the file, only the config knows which entry named it
            raise InputError(str(e), field=where) from e

    sources = [TrainingSource(d.source, train, d.weight, True)]
    sources += [TrainingSource(f"{s.format}:{Path(s.root).name}:{s.split}", read(s, f"data.sources[{i}]"),
                                   s.weight, s.unlabelled) for i, s in enumerate(d.sources)]
    val_sets = {"val": val}
    for i, s in enumerate(d.val_sources):
        name = f"{s.format}:{s.split}"
        if name in val_sets:        # two sets of one format and split: keep both, told apart by their index
            name = f"{name}:{i}"
        val_sets[name] = read(s, f"data.val_sources[{i}]")
    check_held_out(sources, val_sets)
    for source in sources:
        print(f"    train {source.name}: {len(source.dataset.labelled(d.min_keypoints))} labelled persons "
              f"(+{len(source.dataset.unlabelled())} boxes) in {len(source.dataset.images)} images, weight {source.weight}")
    for name, val in val_sets.items():
        print(f"    dev-val {name}: {len(val.labelled())} persons in {len(val.images)} images")
    if not any(s.dataset.labelled(d.min_keypoints) for s in sources):
        raise InputError("no annotation with labelled keypoints (empty dataset)", path=train.annotation_file)
    return sources, val_sets


@dataclass
class RunData:
    """What the data stage returns: every training source (the main split first) and every dev-val set ("val"
    first) of the data config ``config``, cut into crops by ``codec`` for ``skeleton``, one image store, and a
    video student's tracks."""
    config: DataConfig
    codec: HeatmapCodec
    skeleton: Skeleton
    sources: list[TrainingSource]
    val_sets: dict[str, CocoDataset]
    images: ImageStore = field(default_factory=ImageStore)
    # a video student's rendered tracks, "train" and "val": ``synthetic_tracks``' arrays; None for a pose student
    tracks: dict[str, dict[str, np.ndarray]] | None = None

    @property
    def train(self) -> CocoDataset:
        return self.sources[0].dataset

    @property
    def val(self) -> CocoDataset:
        return self.val_sets["val"]

    def sampler(self, dataset: CocoDataset, augment: bool) -> CropSampler:
        """A ``CropSampler`` of ``dataset``'s labelled persons, augmented as the config says when ``augment``."""
        persons = dataset.labelled(self.config.min_keypoints)
        if not persons:
            raise InputError("no annotation with enough labelled keypoints (empty dataset)",
                             path=dataset.annotation_file, field="annotations[*].keypoints")
        return CropSampler(persons, self.codec, self.skeleton.flip_index, self.config.padding,
                           self.config.augment if augment else None, self.images)

    def training_sampler(self, with_unlabelled: bool, augment: bool) -> tuple[CropSampler, np.ndarray]:
        """Every training person of every source (``training_persons``) as one ``CropSampler``, and the (N,)
        probability of drawing each."""
        persons, draw = training_persons(self.sources, self.config.min_keypoints, with_unlabelled)
        return CropSampler(persons, self.codec, self.skeleton.flip_index, self.config.padding,
                           self.config.augment if augment else None, self.images), draw

    def state(self) -> dict:
        """``tfpose.artifacts.data_state`` of every training source and dev-val set: what a trained model learnt
        from and was selected on."""
        return data_state(self.config, [s.dataset for s in self.sources] + list(self.val_sets.values()))


def check_held_out(sources: list[TrainingSource], val_sets: dict[str, CocoDataset]) -> None:
    """No training source may hold an image of a dev-val set (compared by resolved path): scores on a set the
    student was trained on say nothing about new photos."""
    held_out = {}
    for name, val in val_sets.items():
        held_out.update({Path(p.image_path).resolve(): name for p in val.persons})
    for i, source in enumerate(sources):
        for person in source.dataset.persons:
            hit = held_out.get(Path(person.image_path).resolve())
            if hit is not None:
                field_name = "data" if i == 0 else f"data.sources[{i - 1}]"
                raise InputError(f"training source {source.name} holds {person.image_path}, an image of the "
                                 f"dev-val set '{hit}': never train on a set you report", field=field_name)
