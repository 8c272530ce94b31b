"""Teacher targets computed once, on disk: a folder of memory-mapped arrays, resumable, shared between runs.

A frozen SavedModel teacher (MoveNet Thunder: about 40 ms a crop on two CPU cores) costs more than a student's
training step, so it runs once on ``views`` views of every training person (view 0 the plain crop, the others
seeded draws of the training augmentation) and training reads the results. Thousands of persons do not fit in a
``.npz`` held in memory, so each array is its own ``.npy`` read through ``np.load(mmap_mode="r")``:

    crops.npy       (N, H, W, 3) uint8   the student's input for each view
    teacher.npy     (N, h, w, K) uint8   the teacher's heatmaps on the student's grid, x 255 (steps of 0.004)
    keypoints.npy   (N, K, 2) float32    ground truth in crop pixels; the targets are encoded when a batch is drawn
    visibility.npy  (N, K) uint8         0 unlabelled, 1 occluded, 2 visible
    progress.json   {"persons": n, "views": V, "codec": {...}}  persons written so far (the cache is complete when n
                    is every person), and the student codec the views were cut for (the targets' sigma)

N = persons x views, person-major. The folder's name is a digest of what the views depend on
(``teacher_views_key``), so a changed config never reads stale views, and an interrupted run goes
on from the last chunk it wrote.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from tfpose.artifacts import hash_persons, input_files
from tfpose.codec import HeatmapCodec
from tfpose.config import PipelineConfig
from tfpose.data.transforms import (apply_matrix, colour_jitter, flip_keypoints, grid_matrix, jitter_matrix, occlude,
                                   truncate)

ARRAYS = ("crops", "teacher", "keypoints", "visibility")
CHUNK = 32          # persons per teacher call and per progress record


class ViewCache:
    """The arrays of a complete (or growing) cache folder, memory-mapped; ``cache[name]`` is one of ``ARRAYS``."""

    def __init__(self, folder: Path, views: int):
        self.folder, self.views = Path(folder), views
        self.arrays = {name: np.load(self.folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
        try:
            self.codec = HeatmapCodec.from_dict(json.loads((self.folder / "progress.json").read_text())["codec"])
        except (OSError, ValueError, KeyError, TypeError):
            self.codec = None        # written before the codec was recorded

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __len__(self) -> int:
        return len(self.arrays["crops"])

    @property
    def persons(self) -> int:
        return len(self) // self.views

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.folder.iterdir() if f.is_file())


def _progress(folder: Path) -> int:
    try:
        return int(json.loads((folder / "progress.json").read_text())["persons"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def open_view_cache(folder: Path) -> ViewCache | None:
    """The complete cache in ``folder`` (a ``build_view_cache`` folder, ``teacher_views_{V}_{key}``), or None when
    it is absent, unreadable or still growing."""
    folder = Path(folder)
    try:
        progress = json.loads((folder / "progress.json").read_text())
        views = int(progress.get("views") or folder.name.split("_")[2])
        cache = ViewCache(folder, views)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return cache if int(progress["persons"]) * views == len(cache) else None


def build_view_cache(folder: Path, view_sampler, teacher, views: int, seed: int) -> ViewCache:
    """Fill ``folder`` with the teacher's heatmaps for ``views`` views of every person of ``view_sampler`` (a
    ``TeacherViewSampler``), resuming after the last complete chunk; a finished folder is opened as it is."""
    from tfpose.artifacts import write_json

    folder = Path(folder)
    n_persons = len(view_sampler)
    codec = view_sampler.codec
    w, h = codec.input_size
    hw, hh = codec.heatmap_size
    k = len(view_sampler.flip_index)
    shapes = {"crops": ((h, w, 3), np.uint8), "teacher": ((hh, hw, k), np.uint8),
              "keypoints": ((k, 2), np.float32), "visibility": ((k,), np.uint8)}
    done = _progress(folder)
    if done >= n_persons:
        print(f"    reusing teacher views in {folder}")
        return ViewCache(folder, views)
    if done and not all(_fits(folder / f"{name}.npy", (n_persons * views, *shape), dtype)
                        for name, (shape, dtype) in shapes.items()):
        done = 0                         # an array lost or of another shape: the progress record cannot be trusted
    if done == 0 and folder.exists():
        shutil.rmtree(folder)            # a folder without progress holds nothing worth keeping
    if teacher is None:
        raise ValueError(f"no complete teacher views in {folder}, and no teacher to compute them")
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, (shape, dtype) in shapes.items():
        path = folder / f"{name}.npy"
        mode = "r+" if path.is_file() else "w+"
        arrays[name] = np.lib.format.open_memmap(path, mode, dtype, (n_persons * views, *shape))
    started, first = time.perf_counter(), done
    if done:
        print(f"    resuming teacher views at person {done}/{n_persons}")
    for lo in range(done, n_persons, CHUNK):
        hi = min(n_persons, lo + CHUNK)
        views_in, teacher_in = [], []
        for i in range(lo, hi):
            for v in range(views):
                sample, teacher_view = view_sampler.sample(i, None if v == 0 else seed * 100_003 + 1000 * i + v)
                views_in.append(sample)
                teacher_in.append(teacher_view)
        rows = slice(lo * views, hi * views)
        arrays["crops"][rows] = np.stack([s.crop for s in views_in]).astype(np.uint8)
        maps = teacher.precompute(np.stack(teacher_in).astype(np.float32))
        if maps.shape[1:] != shapes["teacher"][0]:
            raise ValueError(f"the teacher's heatmaps are {maps.shape[1:]} (h, w, K), the student's grid "
                             f"{shapes['teacher'][0]}: the teacher was built for another codec")
        arrays["teacher"][rows] = np.round(np.clip(maps, 0, 1) * 255).astype(np.uint8)
        arrays["keypoints"][rows] = np.stack([s.keypoints for s in views_in])
        arrays["visibility"][rows] = np.stack([_visibility(s) for s in views_in])
        for a in arrays.values():
            a.flush()
        write_json(folder / "progress.json", {"persons": hi, "views": views, "codec": codec.to_dict()})
        rate = (hi - first) / max(time.perf_counter() - started, 1e-9)
        print(f"\r    teacher views: {hi}/{n_persons} persons x {views} ({rate:.1f} persons/s, "
              f"{(n_persons - hi) / max(rate, 1e-9) / 60:.1f} min left)", end="", flush=True)
    print()
    del arrays
    return ViewCache(folder, views)


def _fits(path: Path, shape: tuple, dtype) -> bool:
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return array.shape == shape and array.dtype == dtype


def _visibility(sample) -> np.ndarray:
    """(K,) 0/1/2 of a sample: its weights say which joints are labelled; occluded and visible both train alike."""
    return np.where(sample.weights > 0, 2, 0).astype(np.uint8)


def draw_batch(cache: ViewCache, codec: HeatmapCodec, flip_index: np.ndarray, probabilities: np.ndarray,
               batch: int, colour: float, seed: int, part: tuple[int, int] = (0, 1), augment=None):
    """One training batch from the cache, all of it decided by ``seed``: persons drawn by ``probabilities`` (P,),
    a view of each, a coin-flip mirror (left and right joints swap), ``augment`` (a ``ViewAugmentConfig``: box
    error, occluders, truncation; ``augment_view``) and a colour jitter. ``part`` (i, p): only the i-th of p equal
    parts of that batch is read and made (the share of one of p workers).

    Returns crops (b, H, W, 3) float32, heatmaps (b, h, w, K), weights (b, K), teacher_heatmaps (b, h, w, K), with
    b = batch / p."""
    index, parts = part
    if batch % parts:
        raise ValueError(f"a batch of {batch} cannot be split into {parts} equal parts")
    rng = np.random.default_rng(seed)
    persons = rng.choice(len(probabilities), batch, p=probabilities)
    rows = np.sort(persons * cache.views + rng.integers(0, cache.views, batch))
    mirror = rng.random(batch) < 0.5
    jitter = rng.integers(0, 2**63 - 1, batch)     # one stream per crop: a part makes its crops alone
    share = slice(index * batch // parts, (index + 1) * batch // parts)
    rows, mirror, jitter = rows[share], mirror[share], jitter[share]
    crops = np.asarray(cache["crops"][rows], np.float32)
    teacher = np.asarray(cache["teacher"][rows], np.float32) / 255
    keypoints = np.array(cache["keypoints"][rows])
    visibility = np.array(cache["visibility"][rows]).astype(np.int64)
    width = codec.input_size[0]
    heatmaps, weights = [], []
    for b in range(len(rows)):
        if mirror[b]:
            # mirroring the crop mirrors every heatmap cell exactly (cell centres are symmetric about its centre)
            crops[b] = crops[b, :, ::-1]
            teacher[b] = teacher[b, :, ::-1][..., flip_index]
            keypoints[b, :, 0] = width - 1 - keypoints[b, :, 0]
            keypoints[b], visibility[b] = flip_keypoints(keypoints[b], visibility[b], flip_index)
        rng = np.random.default_rng(jitter[b])
        if augment is not None:
            donor = crops[(b + 1) % len(rows)]
            crops[b], teacher[b], keypoints[b], visibility[b] = augment_view(
                crops[b], teacher[b], keypoints[b], visibility[b], codec, rng, augment, donor)
        crops[b] = colour_jitter(crops[b], rng, colour)
        hm, wt = codec.encode(keypoints[b], visibility[b])
        heatmaps.append(hm)
        weights.append(wt)
    return crops, np.stack(heatmaps).astype(np.float32), np.stack(weights).astype(np.float32), teacher


def augment_view(crop, teacher, keypoints, visibility, codec: HeatmapCodec, rng, augment, donor):
    """One cached view as a real detector and a real photo would cut it (``ViewAugmentConfig``): the crop
    (H, W, 3) and teacher heatmaps (h, w, K) moved by one box error, joints leaving the crop or falling in a
    truncated band unlabelled; an occluder from ``donor`` (H, W, 3) hides part of the crop, not of the targets."""
    if augment.shift or augment.scale:
        m = jitter_matrix(rng, codec.input_size, augment.shift, augment.scale)
        crop = cv2.warpAffine(crop, m, codec.input_size, flags=cv2.INTER_LINEAR, borderValue=0)
        teacher = cv2.warpAffine(teacher, grid_matrix(m, codec.stride), codec.heatmap_size, flags=cv2.INTER_LINEAR,
                                 borderValue=0).reshape(teacher.shape)
        keypoints = apply_matrix(keypoints, m)
    if augment.occlusion and rng.random() < augment.occlusion:
        crop = occlude(crop, rng, donor)
    keep = None
    if augment.truncation and rng.random() < augment.truncation:
        crop, keep = truncate(crop, rng)
    w, h = codec.input_size
    x, y = np.round(keypoints).astype(int).T
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    if keep is not None:
        inside[inside] &= keep[y[inside], x[inside]]
    return crop, teacher, keypoints, np.where(inside, visibility, 0)


def cached_view_dataset(cache: ViewCache, codec: HeatmapCodec, flip_index: np.ndarray, probabilities: np.ndarray,
                        batch: int, colour: float, seed: int, shard=None, augment=None):
    """An endless tf.data stream of ``draw_batch`` batches as ``(images, {"heatmaps", "weights",
    "teacher_heatmaps"})``; global batch i is drawn with a seed decided by ``(seed, i)`` alone, from batch
    ``shard.first_batch`` on, and ``shard`` (a ``tfpose.data.pipeline.Shard``) reads its part of each, in batches
    of ``shard.batch``."""
    from tfpose._keras import tf
    from tfpose.data.pipeline import SEED_RANGE, Shard, sharded_here

    shard = shard or Shard()
    out_batch = shard.batch_size(batch)       # what each element holds (checks that the batch splits evenly)
    share = batch // shard.count              # the rows of each global batch that this worker draws
    w, h = codec.input_size
    hw, hh = codec.heatmap_size
    k = len(flip_index)
    flip_index = np.asarray(flip_index)

    def load(batch_seed):
        return draw_batch(cache, codec, flip_index, probabilities, batch, colour, int(batch_seed),
                          (shard.index, shard.count), augment)

    def load_tf(batch_seed):
        crops, heatmaps, weights, teacher = tf.numpy_function(load, [batch_seed], [tf.float32] * 4)
        crops.set_shape((share, h, w, 3))
        heatmaps.set_shape((share, hh, hw, k))
        weights.set_shape((share, k))
        teacher.set_shape((share, hh, hw, k))
        return crops, {"heatmaps": heatmaps, "weights": weights, "teacher_heatmaps": teacher}

    key = tf.constant([seed, 1], tf.int64)
    seeds = tf.data.Dataset.range(shard.first_batch, np.iinfo(np.int64).max).map(
        lambda i: tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(key, i), minval=0,
                                              maxval=SEED_RANGE, dtype=tf.int64))
    ds = seeds.map(load_tf, num_parallel_calls=tf.data.AUTOTUNE)
    if out_batch < share:
        ds = ds.rebatch(out_batch, drop_remainder=True)      # several replicas on each worker
    return (sharded_here(ds) if shard.count > 1 else ds).prefetch(2)


def wait_for_view_cache(folder: Path, poll_s: float = 2.0) -> ViewCache:
    """The complete cache in ``folder``, once another process (a multi-worker run's chief) has finished it."""
    folder = Path(folder)
    announced = False
    while (cache := open_view_cache(folder)) is None:
        if not announced:
            print(f"    waiting for the chief to finish the teacher views in {folder}", flush=True)
            announced = True
        time.sleep(poll_s)
    return cache


def teacher_views_key(cfg: PipelineConfig, sampler, views: int) -> str:
    """A digest of everything the cached teacher views depend on: the teacher (its config and files), every
    person (image, box, keypoints), the crop geometry and augmentation, the number of views and the seed."""
    return _persons_key(_settings_digest(cfg, sampler, views), sampler.persons)


def _settings_digest(cfg: PipelineConfig, sampler, views: int):
    """The sha256 object fed with all ``teacher_views_key`` depends on but the persons."""
    digest = hashlib.sha256()
    # a SavedModel teacher is its files, not a training recipe
    teacher = {k: v for k, v in asdict(cfg.teacher).items() if k not in ("train", "model")}
    root = Path(cfg.teacher.path)
    files = input_files(root) if root.is_dir() else []
    codec = sampler.codec
    digest.update(json.dumps({
        "format": 1, "teacher": teacher, "files": files, "views": views, "seed": cfg.seed,
        "codec": [list(codec.input_size), codec.stride, codec.sigma], "padding": sampler.padding,
        "augment": asdict(sampler.augment) if sampler.augment else None}, sort_keys=True,
        default=str).encode())
    return digest


def _persons_key(settings, persons) -> str:
    digest = settings.copy()
    hash_persons(digest, persons)
    return digest.hexdigest()[:16]


def start_from_prefix(folder: Path, cfg: PipelineConfig, sampler, views: int) -> int:
    """Start the empty cache ``folder`` from a complete cache beside it whose persons are the first persons of
    ``sampler`` (a source added at the end of a config's list): its rows are copied, as a person's views depend on
    nothing but the person, its place and the settings in the key. Returns how many persons were copied (0: none
    fits)."""
    if _progress(folder):
        return 0
    n = len(sampler)
    settings = _settings_digest(cfg, sampler, views)      # the teacher's files hashed once, not once a folder
    best = None
    for other in folder.parent.glob(f"teacher_views_{views}_*"):
        cache = open_view_cache(other) if other != folder else None
        if cache is not None and cache.persons < n and (best is None or cache.persons > best.persons) \
                and other.name.endswith(_persons_key(settings, sampler.persons[:cache.persons])):
            best = cache
    if best is None:
        return 0
    from tfpose.artifacts import write_json

    folder.mkdir(parents=True, exist_ok=True)
    for name in ARRAYS:
        head = best[name]
        array = np.lib.format.open_memmap(folder / f"{name}.npy", "w+", head.dtype, (n * views, *head.shape[1:]))
        array[:len(head)] = head
        array.flush()
    write_json(folder / "progress.json", {"persons": best.persons, "views": views,
                                          "codec": sampler.codec.to_dict()})
    print(f"    teacher views of the first {best.persons} persons copied from {best.folder}")
    return best.persons


def cached_teacher_views(cfg: PipelineConfig, out: Path, teacher, sampler, views: int, chief: bool = True) -> ViewCache:
    """The teacher's heatmaps on ``views`` views of every person of ``sampler``, computed once into a folder of
    memory-mapped arrays (``tfpose.distill.view_cache``) named by ``teacher_views_key`` in ``distill.teacher_cache``
    (default: the run folder): a resumed run, or any run whose views would be the same, does not pay for the
    teacher again, an interrupted computation goes on where it stopped, and a changed config never reads stale views.
    ``chief``: whether this process writes the cache (the others of a multi-worker run wait for it and read it)."""
    from tfpose.distill.teachers import TeacherViewSampler

    folder = Path(cfg.distill.teacher_cache) if cfg.distill.teacher_cache else Path(out)
    folder = folder / f"teacher_views_{views}_{teacher_views_key(cfg, sampler, views)}"
    input_size = teacher.input_size if teacher is not None else cfg.teacher.input_size
    if chief:
        start_from_prefix(folder, cfg, sampler, views)
        cache = build_view_cache(folder, TeacherViewSampler(sampler, input_size), teacher, views, cfg.seed)
    else:    # one folder, one writer: the other workers of a multi-worker run read what the chief computes
        cache = wait_for_view_cache(folder)
    print(f"    teacher views: {len(cache)} crops, {cache.disk_bytes() / 2**30:.2f} GiB in {folder}")
    return cache
