"""This CPU's ceiling: how many multiply-adds per second TFLite (ai-edge-litert, XNNPACK) reaches on plain
convolutions in int8 and float32, at 1 and 2 threads, so a model's latency can be read as a share of what the
machine can do, and int8 judged by whether it buys speed here (VNNI, ARM dot-product) or file size only.

    python benchmarks/cpu_ceiling.py [--runs 50] [--write]          # about 1 minute on 2 cores

Micro-models (tf_keras, batch 1): dense 3x3 convs, 1x1 convs, depthwise 3x3 convs and MobileNetV2 blocks
(1x1 expansion x6, depthwise 3x3, 1x1 projection, residual add), each a short stack of identical layers; full
int8 (random representative data: the ranges do not change the speed) and float32. MACs are counted in the
converted files (``tflite.macs``); the figure is the median over ``--runs`` timed runs after warm-up.
Other benchmarks call ``share_of_ceiling(macs, ms, threads)``: the rate a model reaches over the dense int8 rate
measured here and now.
"""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from benchmarks._sections import publish  # noqa: E402

ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "asimddp")   # asimddp: ARM's int8 dot product
KINDS = {   # kind: (input (H, W, C), layers, what)
    "dense3x3": ((56, 56, 64), 2, "3x3 conv 64 -> 64 at 56 x 56, x2"),
    "pointwise1x1": ((56, 56, 128), 4, "1x1 conv 128 -> 128 at 56 x 56, x4"),
    "depthwise3x3": ((112, 112, 96), 4, "depthwise 3x3 on 96 channels at 112 x 112, x4"),
    "mobilenetv2_block": ((56, 56, 24), 4, "MobileNetV2 block 24 -> 144 -> 24 at 56 x 56, x4"),
}


def cpu_info() -> dict:
    """The CPU's model name (lscpu, else /proc/cpuinfo) and which of ``ISA_FLAGS`` it has."""
    name, flags = None, set()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        name = fields.get("Model name", "").strip() or None
        if name and "CPU family" in fields:   # a virtual machine may name only the brand ("AMD EPYC")
            name += f" (family {fields['CPU family'].strip()}, model {fields.get('Model', '?').strip()})"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        text = Path("/proc/cpuinfo").read_text()
        name = name or next((m.group(1).strip() for m in re.finditer(r"^model name\s*:(.*)$", text, re.M)), None)
        for m in re.finditer(r"^(?:flags|Features)\s*:(.*)$", text, re.M):
            flags.update(m.group(1).split())
    except OSError:
        pass
    return {"cpu": name or "unknown", **{flag: flag in flags for flag in ISA_FLAGS}}


def micro_model(kind: str):
    """A tf_keras model of ``KINDS[kind]``: (1, H, W, C) -> same shape."""
    from tfpose._keras import keras

    layers = keras.layers
    shape, depth, _ = KINDS[kind]
    inputs = keras.Input(shape, batch_size=1)
    x = inputs
    for _ in range(depth):
        if kind == "dense3x3":
            x = layers.Conv2D(shape[-1], 3, padding="same", activation="relu")(x)
        elif kind == "pointwise1x1":
            x = layers.Conv2D(shape[-1], 1, activation="relu")(x)
        elif kind == "depthwise3x3":
            x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        else:
            y = layers.Conv2D(6 * shape[-1], 1, activation="relu6")(x)
            y = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(y)
            x = layers.Add()([x, layers.Conv2D(shape[-1], 1)(y)])
    return keras.Model(inputs, x, name=kind)


def convert_micro(model, int8: bool) -> bytes:
    """.tflite bytes, batch 1; int8: full integer with int8 input and output, calibrated on random normal data."""
    from tfpose._keras import tf

    spec = tf.TensorSpec(model.input_shape, tf.float32)
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
    if int8:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.normal(size=model.input_shape).astype(np.float32)]
                                                    for _ in range(8))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def timing_ms(path: Path, threads: int, runs: int, warmup: int = 5) -> tuple[float, float]:
    """(median, fastest) milliseconds of one invoke with ``threads`` threads (ai-edge-litert, XNNPACK as it
    applies it); on a shared CPU the fastest run is the one least disturbed."""
    from tflite.runtime import import_runtime

    _, _, module = import_runtime()
    interpreter = module.Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    data = (rng.integers(-128, 128, detail["shape"]) if detail["dtype"] == np.int8
            else rng.normal(size=detail["shape"])).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], data)
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times)), float(np.min(times))


def measure(kinds=tuple(KINDS), threads=(1, 2), runs: int = 50, folder: Path | None = None) -> list[dict]:
    """One row per kind, precision and thread count: MACs (from the .tflite), median and fastest ms, GMAC/s of
    the median (and of the fastest run)."""
    from tflite.macs import count_ops_macs
    from tfpose.artifacts import write_bytes

    folder = Path(folder or tempfile.mkdtemp(prefix="tfpose-ceiling-"))
    rows = []
    for kind in kinds:
        model = micro_model(kind)
        for precision in ("int8", "float32"):
            path = folder / f"{kind}_{precision}.tflite"
            write_bytes(path, convert_micro(model, precision == "int8"))
            macs = count_ops_macs(path)["macs"]
            for t in threads:
                ms, best = timing_ms(path, t, runs)
                rows.append({"kind": kind, "precision": precision, "threads": t, "macs": macs, "ms": ms,
                             "best_ms": best, "gmacs_per_s": macs / ms / 1e6, "best_gmacs_per_s": macs / best / 1e6})
    return rows


@functools.lru_cache(maxsize=None)
def dense_int8_ceiling(threads: int = 1, runs: int = 50) -> float:
    """GMAC/s of this CPU on dense int8 3x3 convolutions (measured once per process)."""
    return next(r["gmacs_per_s"] for r in measure(("dense3x3",), (threads,), runs) if r["precision"] == "int8")


def share_of_ceiling(macs: float, latency_ms: float, threads: int = 1) -> float:
    """The rate of a model with ``macs`` multiply-adds that runs in ``latency_ms`` over this CPU's dense int8 rate
    at the same thread count: 1.0 means it computes as fast as plain int8 convolutions can."""
    return macs / latency_ms / 1e6 / dense_int8_ceiling(threads)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--write", action="store_true", help="replace the `cpu_ceiling` section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    from tflite.benchmark import measure_latency
    from tflite.macs import count_ops_macs
    from tflite.runtime import import_runtime
    from tflite.validate import machine_info

    load_before = machine_info()["load_average_1min"]
    info, runtime = cpu_info(), import_runtime()
    rows = measure(runs=args.runs)
    rate = {(r["kind"], r["precision"], r["threads"]): r["gmacs_per_s"] for r in rows}
    best = {(r["kind"], r["precision"], r["threads"]): r["best_gmacs_per_s"] for r in rows}
    models = {"MoveNet Lightning fp32": ROOT.parent / "shared/models/movenet-peers/movenet-lightning_fp32.tflite",
              "default student int8 (android_assets)": ROOT / "android_assets/model.tflite"}
    peers = []
    for label, path in models.items():
        if path.is_file():
            macs = count_ops_macs(path)["macs"]
            for t in (1, 2):
                latency = measure_latency(path, None, t, runs=args.runs)["median_ms"]
                peers.append((label, t, macs, latency, macs / latency / 1e6 / rate[("dense3x3", "int8", t)]))
    load_after = machine_info()["load_average_1min"]
    flags = ", ".join(f"{flag} {'yes' if info[flag] else 'no'}" for flag in ISA_FLAGS)
    lines = [f"    python benchmarks/cpu_ceiling.py --runs {args.runs} --write", "",
             f"CPU: {info['cpu']}; {flags}. {runtime[0]} {runtime[1]}, XNNPACK; batch 1, median of {args.runs} "
             f"runs. 1-minute load average {load_before:.2f} before and {load_after:.2f} after (this machine's "
             "2 cores are shared: a load above 0 means other processes took part of them). GMAC/s of the median "
             "run, and in brackets of the fastest, the least disturbed:", "",
             "| kind | GMAC | int8 1 thread | int8 2 threads | fp32 1 thread | fp32 2 threads | int8 / fp32 (1 thread) "
             "|", "|---|---|---|---|---|---|---|"]
    for kind, (_, _, what) in KINDS.items():
        macs = next(r["macs"] for r in rows if r["kind"] == kind)
        cells = [f"{rate[(kind, p, t)]:.1f} ({best[(kind, p, t)]:.1f})" for p in ("int8", "float32") for t in (1, 2)]
        lines.append(f"| {what} | {macs / 1e9:.4f} | {' | '.join(cells)} | "
                     f"{rate[(kind, 'int8', 1)] / rate[(kind, 'float32', 1)]:.2f} |")
    dense = rate[("dense3x3", "int8", 1)]
    dot = any(info[f] for f in ("avx512_vnni", "avx_vnni", "asimddp"))
    lines += ["", f"Dense 3x3 int8 ran at {dense / rate[('dense3x3', 'float32', 1)]:.2f}x the fp32 rate on 1 thread: "
              + ("this CPU has int8 dot-product instructions, so int8 buys speed here as well as file size."
                 if dot else "without int8 dot-product instructions (VNNI, ARM dot product) int8 buys file size "
                 "here, not speed.")
              + f" 2 threads gave {rate[('dense3x3', 'int8', 2)] / dense:.2f}x the 1-thread rate (the load says how "
              "much of the second core was free). Per multiply-add, relative to dense int8 3x3 at 1 thread: "
              + ", ".join(f"{k} int8 {rate[(k, 'int8', 1)] / dense:.2f}" for k in KINDS if k != "dense3x3") + ".",
              "", "Models as a share of the dense int8 ceiling at the same thread count "
              "(`benchmarks.cpu_ceiling.share_of_ceiling`):", "",
              "| model | threads | GMAC | ms | share of dense int8 ceiling |", "|---|---|---|---|---|"]
    lines += [f"| {label} | {t} | {macs / 1e9:.4f} | {latency:.2f} | {share:.2f} |"
              for label, t, macs, latency, share in peers]
    publish("cpu_ceiling", "\n".join(lines), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
