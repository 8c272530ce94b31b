"""Crops per second of the ``configs/default_student_gpu.yaml`` recipe's input pipeline, on 1 and 2 cores, beside
what one GPU would consume.

    python benchmarks/input_throughput.py [--repeats 3] [--batches 4] [--write]

The recipe trains on COCO 2017 with MoveNet Thunder run online inside each train step (``teacher_views: 0``), so
its input pipeline is ``build_teacher_view_dataset``: per person, decode the photo, warp the augmented 192x256
student crop and the 256x256 teacher view of the same geometry, colour-jitter the crop and encode its heatmap
targets, in ``tf.numpy_function`` calls mapped in parallel by tf.data. The photos are the 80 real COCO train2017
photos of ../shared/data/coco-mini-train (its 172 boxes, with and without keypoints, as the recipe's
``unlabelled: true`` draws them), decoded afresh for every crop as at COCO scale (118k photos do not stay in memory).

Each measurement runs in its own process pinned to its cores (``os.sched_setaffinity``, TensorFlow's thread pools
sized to match): one process on 1 core, one on 2 cores, and two 1-core processes at once (input pipelines that
share no interpreter lock, e.g. one per worker or tf.data service). The medians of ``--repeats`` runs are reported:
the machine is shared, so single runs are noisy. A per-operation breakdown on 1 core, and the same operations
done by TensorFlow ops, say where the time goes and what would be faster.

The GPU side is an **estimate**: the training FLOPs per crop (the student's forward pass x 3 for forward and
backward, plus the teacher's forward pass) over an assumed sustained throughput. ``--gpu-tflops`` sets it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing
from benchmarks._sections import publish  # noqa: E402
from tfpose.artifacts import write_json  # noqa: E402

CONFIG = ROOT / "configs/default_student_gpu.yaml"
DATA = ROOT.parent / "shared/data/coco-mini-train"
TEACHER = ROOT.parent / "shared/models/movenet-thunder-teacher"
SECTION = "input_throughput"
RAW = ROOT / "runs/bench_input_throughput.json"    # every measuring run's numbers
WARMUP = 3                  # batches read before the clock starts: the prefetch buffer is drained by then


def _pin(cores: list[int]) -> None:
    """Run this process on ``cores`` only, before TensorFlow sizes its thread pools."""
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {available[c % len(available)] for c in cores})
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(len(cores))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _recipe():
    """The recipe's config, its teacher-view sampler over coco-mini-train (no image cache) and draw weights."""
    import numpy as np

    from tfpose.codec import HeatmapCodec
    from tfpose.config import load_config
    from tfpose.data.coco import ImageStore, load_coco
    from tfpose.data.samples import CropSampler
    from tfpose.distill.teachers import TeacherViewSampler
    from tfpose.skeleton import get_skeleton

    cfg = load_config(CONFIG, [f"data.root={DATA}"])
    c = cfg.codec
    codec = HeatmapCodec(tuple(c.input_size), c.stride, c.sigma, c.refine, c.peak_blur)
    data = load_coco(DATA / cfg.data.train_annotations, DATA / cfg.data.train_images, 17)
    persons = data.labelled(cfg.data.min_keypoints) + (data.unlabelled() if cfg.distill.unlabelled else [])
    sampler = CropSampler(persons, codec, get_skeleton(cfg.skeleton).flip_index, cfg.data.padding,
                          cfg.data.augment, ImageStore(cache=False))
    return cfg, TeacherViewSampler(sampler, tuple(cfg.teacher.input_size)), np.full(len(persons), 1 / len(persons))


def child_pipeline(cores: list[int], batches: int, barrier: Path | None, workers: int) -> dict:
    """Crops/s of the recipe's tf.data pipeline in this process, on ``cores``."""
    _pin(cores)
    from tfpose._keras import tf
    from tfpose.distill.teachers import build_teacher_view_dataset

    tf.config.threading.set_intra_op_parallelism_threads(len(cores))
    tf.config.threading.set_inter_op_parallelism_threads(len(cores))
    cfg, sampler, draw = _recipe()
    batch = cfg.distill.train.batch_size
    if barrier is not None:     # the processes start together (before the pipeline: its prefetch would not wait)
        (barrier / f"ready-{os.getpid()}").touch()
        while len(list(barrier.glob("ready-*"))) < workers:
            time.sleep(0.05)
    it = iter(build_teacher_view_dataset(sampler, batch, training=True, seed=cfg.seed, probabilities=draw))
    for _ in range(WARMUP):     # tracing, thread pools, and what the prefetch buffer ran ahead meanwhile
        next(it)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(it)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    # CPU time (every thread of the process): what a crop costs, whatever else the shared cores are running
    return {"crops_per_s": batches * batch / seconds, "crops_per_cpu_s": batches * batch / cpu,
            "utilisation": cpu / seconds / len(cores), "seconds": seconds, "cores": len(cores)}


def child_ops(repeats: int) -> dict:
    """CPU milliseconds per crop of each step of a teacher-view sample on 1 core, and of TensorFlow ops for the
    same."""
    _pin([0])
    import cv2
    import numpy as np

    from tfpose._keras import tf
    from tfpose.data.images import read_bytes, read_rgb
    from tfpose.data.transforms import colour_jitter, invert_matrix, warp_image
    from tfpose.distill.teachers import teacher_matrix

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    cfg, sampler, _ = _recipe()
    crops = sampler.sampler
    codec = crops.codec
    (w, h), tsize = codec.input_size, sampler.teacher_size
    chosen = list(range(0, len(crops), max(1, len(crops) // 48)))[:48]
    samples = [crops.sample(i, 1000 + i) for i in chosen]
    paths = [crops.persons[i].image_path for i in chosen]
    blobs = [read_bytes(Path(p)) for p in paths]
    images = [read_rgb(p) for p in paths]

    def window(image, matrix, size):
        """The image rectangle (y, x, h, w) that a warp to ``size`` reads, clipped to the image."""
        corners = np.array([[0, 0], [size[0], 0], [0, size[1]], [size[0], size[1]]], np.float64)
        m = invert_matrix(matrix)
        points = corners @ m[:, :2].T + m[:, 2]
        x0, y0 = np.clip(np.floor(points.min(0)), 0, None).astype(int)
        x1 = int(min(image.shape[1], np.ceil(points[:, 0].max()) + 1))
        y1 = int(min(image.shape[0], np.ceil(points[:, 1].max()) + 1))
        return [y0, x0, max(1, y1 - y0), max(1, x1 - x0)]

    windows = [tf.constant(window(im, s.matrix, (w, h)), tf.int32) for im, s in zip(images, samples)]
    teacher_mats = [teacher_matrix(s.matrix, (w, h), tsize) for s in samples]
    rng = np.random.default_rng(0)
    tf_matrices = []
    for s in samples:              # ImageProjectiveTransform maps output to input pixels: the inverse matrix
        m = invert_matrix(s.matrix)
        tf_matrices.append(tf.constant([[m[0, 0], m[0, 1], m[0, 2], m[1, 0], m[1, 1], m[1, 2], 0, 0]], tf.float32))
    image_tensors = [tf.constant(im[None]) for im in images]

    # TensorFlow's ops as a tf.data map would run them: in a graph, not one eager call at a time
    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8), tf.TensorSpec([1, 8], tf.float32)])
    def tf_warp(image, matrix):
        return tf.raw_ops.ImageProjectiveTransformV3(images=image, transforms=matrix, output_shape=[h, w],
                                                     fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def tf_decode(blob):
        return tf.io.decode_jpeg(blob, channels=3)

    @tf.function(input_signature=[tf.TensorSpec([], tf.string), tf.TensorSpec([4], tf.int32)])
    def tf_decode_window(blob, crop_window):
        return tf.io.decode_and_crop_jpeg(blob, crop_window, channels=3)

    def cv_decode(blob, flags):
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(blob, np.uint8), flags), cv2.COLOR_BGR2RGB)

    ops = {
        "read_rgb (read the file, check it is whole, decode with OpenCV, BGR to RGB)": lambda i: read_rgb(paths[i]),
        "decode from memory (OpenCV, BGR to RGB)": lambda i: cv_decode(blobs[i], cv2.IMREAD_COLOR),
        "decode from memory at half size (OpenCV IMREAD_REDUCED_COLOR_2)":
            lambda i: cv_decode(blobs[i], cv2.IMREAD_REDUCED_COLOR_2),
        "decode from memory (tf.io.decode_jpeg)": lambda i: tf_decode(blobs[i]),
        "decode only the crop's window (tf.io.decode_and_crop_jpeg)":
            lambda i: tf_decode_window(blobs[i], windows[i]),
        "warp the 192x256 student crop (OpenCV)": lambda i: warp_image(images[i], samples[i].matrix, (w, h)),
        "warp it (tf ImageProjectiveTransformV3)": lambda i: tf_warp(image_tensors[i], tf_matrices[i]),
        "warp the 256x256 teacher view (OpenCV)": lambda i: warp_image(images[i], teacher_mats[i], tsize),
        "colour jitter": lambda i: colour_jitter(samples[i].crop, rng, cfg.data.augment.colour),
        "encode the heatmap targets": lambda i: codec.encode(samples[i].keypoints, samples[i].weights * 2),
        "whole student sample (CropSampler.sample: decode + warp + jitter + targets)":
            lambda i: crops.sample(chosen[i], 7 + i),
        "whole teacher-view sample (the recipe's: decodes the photo twice)": lambda i: sampler.sample(chosen[i], 7 + i),
    }
    result = {}
    for name, op in ops.items():
        op(0)
        runs = []
        for _ in range(repeats):
            start = time.process_time()        # CPU time: what other work on the shared core takes is not counted
            for i in range(len(chosen)):
                op(i)
            runs.append((time.process_time() - start) / len(chosen) * 1000)
        result[name] = statistics.median(runs)
    photo = np.median([im.shape[0] * im.shape[1] for im in images]) / 1e6
    crop_share = np.median([int(wn[2]) * int(wn[3]) / (im.shape[0] * im.shape[1]) for wn, im in zip(windows, images)])
    return {"ms_per_crop": result, "median_photo_mpix": float(photo), "median_window_share": float(crop_share)}


def _run_child(args: list[str], cores: list[int]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--child", *args, "--cores", ",".join(map(str, cores))],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"a measurement failed (exit {proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


SETTINGS = ("1 process, 1 core", "1 process, 2 cores", "2 processes, 1 core each (sum)")


def measure(batches: int, repeats: int) -> dict:
    """{setting: [{crops_per_s, crops_per_cpu_s, utilisation, load} of each repeat]} for 1 core, 2 cores and
    2 processes x 1 core (rates summed, the rest averaged), the settings interleaved so that they share the noise."""
    runs = {name: [] for name in SETTINGS}
    for r in range(repeats):
        load = os.getloadavg()[0]
        for name, cores in zip(SETTINGS[:2], ([0], [0, 1])):
            runs[name].append({**_result(_run_child(["pipeline", str(batches)], cores)), "load": load})
        with tempfile.TemporaryDirectory() as barrier:
            procs = [_run_child(["pipeline", str(batches), "--barrier", barrier, "--workers", "2"], [c])
                     for c in (0, 1)]
            both = [_result(p) for p in procs]
        runs[SETTINGS[2]].append({"crops_per_s": sum(b["crops_per_s"] for b in both),
                                  "crops_per_cpu_s": statistics.mean(b["crops_per_cpu_s"] for b in both),
                                  "utilisation": statistics.mean(b["utilisation"] for b in both), "load": load})
        print(f"repeat {r + 1}/{repeats} (load {load:.1f}): " + ", ".join(
            f"{k} {v[-1]['crops_per_s']:.1f}/s ({v[-1]['crops_per_cpu_s']:.1f}/cpu-s)" for k, v in runs.items()),
            flush=True)
    return runs


def gpu_estimate(tflops: list[float]) -> dict:
    """Training FLOPs per crop of the recipe (student x 3 + teacher forward) and crops/s at each assumed TFLOP/s."""
    from tfpose._keras import tf
    from tfpose.config import load_config
    from tfpose.flops import count_macs
    from tfpose.models import build_model
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    cfg = load_config(CONFIG, [f"data.root={DATA}"])
    s = cfg.distill.student
    student = build_model(s.name, 17, tuple(cfg.codec.input_size), **s.params)
    student_gflops = 2 * count_macs(student) / 1e9
    teacher = tf.saved_model.load(str(TEACHER)).signatures[cfg.teacher.signature]
    size = tuple(cfg.teacher.input_size)
    graph = convert_variables_to_constants_v2(tf.function(lambda x: teacher(images=x)).get_concrete_function(
        tf.TensorSpec([1, size[1], size[0], 3], tf.float32))).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    teacher_gflops = tf.compat.v1.profiler.profile(graph, options=options).total_float_ops / 1e9
    per_crop = 3 * student_gflops + teacher_gflops
    return {"student": f"{s.name} {s.params}", "student_gflops": student_gflops, "teacher_gflops": teacher_gflops,
            "gflops_per_crop": per_crop, "crops_per_s": {t: t * 1e3 / per_crop for t in tflops},
            "batch": cfg.distill.train.batch_size}


def report(runs: dict, ops: dict, gpu: dict, batches: int, repeats: int) -> str:
    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    one, two, procs = (med(name, "crops_per_s") for name in SETTINGS)
    per_core = med(SETTINGS[2], "crops_per_cpu_s")     # separate processes: no lock shared, a crop's plain cost
    batch = gpu["batch"]
    loads = [r["load"] for r in runs[SETTINGS[0]]]
    lines = [
        "## Input throughput of the GPU recipe (`configs/default_student_gpu.yaml`), CPU cores versus one GPU",
        "",
        "The recipe's input pipeline as it trains: `build_teacher_view_dataset` (decode the photo, warp the augmented "
        "192x256 student crop and the 256x256 MoveNet Thunder view of the same geometry, colour jitter, heatmap "
        "targets) in `tf.numpy_function` calls mapped in parallel by tf.data, over the 80 real COCO train2017 "
        "photos of `../shared/data/coco-mini-train` (172 boxes, with and without keypoints, as `unlabelled: true` "
        "draws them), each photo decoded afresh for every crop as at COCO scale. The teacher itself runs in the "
        "train step (on the GPU), not in the input pipeline; the recipe builds no teacher-view cache. Each setting "
        f"ran in its own process pinned to its cores, {repeats} times, interleaved, each time {batches} batches of "
        f"{batch} crops after {WARMUP} warm-up batches. The machine's two cores were shared with other work (1-minute load "
        f"{min(loads):.1f}-{max(loads):.1f} while measuring), so wall-clock rates vary a lot from run to run; crops "
        "per CPU-second (the CPU time of every thread of the process) is what a crop costs, whatever else runs.",
        "",
        "| setting | crops/s, wall clock (median) | the runs | crops per CPU-second (median) | "
        "share of its cores it got |",
        "|---|---|---|---|---|",
    ]
    for name in SETTINGS:
        walls = ", ".join(f"{r['crops_per_s']:.0f}" for r in runs[name])
        lines.append(f"| {name} | {med(name, 'crops_per_s'):.1f} | {walls} | {med(name, 'crops_per_cpu_s'):.1f} | "
                     f"{med(name, 'utilisation'):.0%} |")
    lines += [
        "",
        f"On the wall clock, two cores gave {two / one:.2f}x one core in one process and {procs / one:.2f}x as two "
        "processes, on cores that other work also wanted. "
        + (f"One process kept its two cores {med(SETTINGS[1], 'utilisation'):.0%} busy where one process on one "
           f"core kept it {med(SETTINGS[0], 'utilisation'):.0%} busy: the `tf.numpy_function` calls take turns on "
           "Python's interpreter lock, so a second core does little for one process, and the lever is more "
           "processes. " if med(SETTINGS[1], "utilisation") < 0.75 * med(SETTINGS[0], "utilisation") else "")
        + "The CPU cost of a crop is the steadier figure: "
        f"{1000 / med(SETTINGS[0], 'crops_per_cpu_s'):.1f} ms of CPU in one process on one core, "
        f"{1000 / med(SETTINGS[1], 'crops_per_cpu_s'):.1f} ms on two, {1000 / per_core:.1f} ms in each of two "
        f"processes. Projected from the last, {per_core:.0f} crops/s per core, for cores that do nothing else, "
        "each in its own input process (e.g. tf.data service workers; many cores also share memory bandwidth, so "
        "read these as upper bounds):",
        "",
        "| cores | 1 | 2 | 4 | 8 | 16 | 32 | 64 |",
        "|---|---|---|---|---|---|---|---|",
        "| crops/s (projection) | " + " | ".join(f"{per_core * n:,.0f}" for n in (1, 2, 4, 8, 16, 32, 64)) + " |",
        "",
        "**What one GPU consumes: an estimate, not a measurement** (no GPU was available to this benchmark). One "
        f"training crop costs the student's forward pass x 3 (forward and backward) plus the teacher's forward pass: "
        f"3 x {gpu['student_gflops']:.2f} + {gpu['teacher_gflops']:.2f} = {gpu['gflops_per_crop']:.2f} GFLOPs "
        f"({gpu['student']} at 192x256 counted by `tfpose.flops`; MoveNet Thunder at 256x256 by TensorFlow's "
        "profiler). At an assumed sustained mixed-precision throughput of:",
        "",
        "| sustained TFLOP/s (assumed) | crops/s one GPU consumes | steps/s at batch " + str(batch) +
        " | cores of this pipeline to keep up |",
        "|---|---|---|---|",
    ]
    needed = [rate / per_core for rate in gpu["crops_per_s"].values()]
    for (t, rate), cores in zip(gpu["crops_per_s"].items(), needed):
        lines.append(f"| {t:g} | {rate:,.0f} | {rate / batch:.1f} | {cores:,.0f} |")
    lines += [
        "",
        "(10 TFLOP/s is about what a T4-class card sustains on a small convnet, 40 about a V100/A100 at a fraction "
        "of its tensor peak; a measured figure belongs here once a GPU is at hand.) So the numpy-function pipeline "
        f"needs {min(needed):.0f} to {max(needed):.0f} cores that do nothing else, in as many processes, to keep "
        "one such GPU busy; in one process, as `tfpose` trains today, it stays near one core's rate. Where a "
        f"crop's time goes on 1 core (median of {repeats} passes over 48 persons; photos of "
        f"{ops['median_photo_mpix']:.2f} Mpixel median, of which a student crop reads {ops['median_window_share']:.0%}):",
        "",
        "| operation | CPU ms per crop |",
        "|---|---|",
    ]
    lines += [f"| {name} | {ms:.2f} |" for name, ms in ops["ms_per_crop"].items()]
    m = ops["ms_per_crop"]
    whole = m["whole teacher-view sample (the recipe's: decodes the photo twice)"]
    read = m["read_rgb (read the file, check it is whole, decode with OpenCV, BGR to RGB)"]
    decodes = {name: ms for name, ms in m.items() if name.startswith("decode")}
    fastest = min(decodes, key=decodes.get)
    cv_warp, tf_warp = m["warp the 192x256 student crop (OpenCV)"], m["warp it (tf ImageProjectiveTransformV3)"]
    cv_full = m["decode from memory (OpenCV, BGR to RGB)"]
    lines += [
        "",
        f"What measures faster, from that table: reading and decoding the photo is {2 * read / whole:.0%} of a "
        f"teacher-view sample ({whole:.1f} ms), because the recipe decodes each photo twice (`TeacherViewSampler` "
        f"reads it again for the teacher's view): decoding it once would save {read:.1f} ms a crop, "
        f"{read / whole:.0%} of the work. Of the decoders, \"{fastest}\" is the fastest ({decodes[fastest]:.1f} ms "
        f"against {cv_full:.1f} ms for OpenCV's full decode, {decodes[fastest] / cv_full:.0%}; for both views it "
        "would read the teacher's larger square window). TensorFlow's warp, though, costs "
        f"{tf_warp / cv_warp:.0f}x OpenCV's ({tf_warp:.1f} against {cv_warp:.2f} ms), so moving the whole crop into "
        "tf.data ops would make it dearer, not cheaper. What would pay: decode once, and only the window; keep "
        "OpenCV's warp; and run the Python part in several processes (the 2-process row), since one process is "
        "held near one core. Past that, a GPU needs more CPU than one machine has for it: tf.data service workers "
        "on other machines, or the teacher-view cache (`distill.teacher_views`), whose batches are memory-mapped "
        "reads with no decode and no warp.",
        "",
        "```bash",
        f"python benchmarks/input_throughput.py --repeats {repeats} --batches {batches} --write",
        "```",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=4, help="batches of the recipe's size per measurement")
    parser.add_argument("--gpu-tflops", type=float, nargs="+", default=[10.0, 40.0],
                        help="assumed sustained GPU throughputs for the estimate")
    parser.add_argument("--write", action="store_true", help=f"replace the {SECTION} section of BENCHMARKS.md")
    parser.add_argument("--from-raw", default=None, help=f"report the raw measurements of an earlier run ({RAW})")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--cores", default="0", help=argparse.SUPPRESS)
    parser.add_argument("--barrier", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "pipeline":
            result = child_pipeline([int(c) for c in args.cores.split(",")], int(rest[0]),
                                    Path(args.barrier) if args.barrier else None, args.workers)
        else:
            result = child_ops(int(rest[0]))
        print(json.dumps(result))
        return
    if args.from_raw:         # the section again from a measuring run's numbers (its text, not its figures, changed)
        raw = json.loads(Path(args.from_raw).read_text())
    else:
        if not DATA.is_dir() or not TEACHER.is_dir():
            raise SystemExit(f"needs {DATA} and {TEACHER} (../shared beside the project)")
        raw = {"runs": measure(args.batches, args.repeats), "ops": _result(_run_child(["ops", str(args.repeats)], [0])),
               "batches": args.batches, "repeats": args.repeats}
        _pin([0])
        raw["gpu"] = gpu_estimate(args.gpu_tflops)
        RAW.parent.mkdir(parents=True, exist_ok=True)
        write_json(RAW, raw)
        print(f"raw measurements in {RAW}")
    raw["gpu"]["crops_per_s"] = {float(k): v for k, v in raw["gpu"]["crops_per_s"].items()}
    publish(SECTION, report(raw["runs"], raw["ops"], raw["gpu"], raw["batches"], raw["repeats"]), args.write)


if __name__ == "__main__":
    main()
