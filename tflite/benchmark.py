"""Latency and memory of a .tflite: warm-up, many timed runs, per thread count, XNNPACK on and off (no TensorFlow).

Each setting runs in a fresh Python process by default, so that its peak memory is its own and one setting's caches
and allocations do not flatter the next; ``isolate=False`` measures inside the calling process instead.

    python -m tflite.benchmark model.tflite --threads 1 2 4 --xnnpack on off --runs 100
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tflite.runtime import TFLiteModel, import_runtime
from tfpose.errors import InputError, TfposeError


def time_runs(model: TFLiteModel, crop: np.ndarray, warmup: int, runs: int) -> np.ndarray:
    """(runs,) milliseconds of one inference each, after ``warmup`` untimed ones; crop (H, W, 3) uint8."""
    for _ in range(warmup):
        model.run(crop)
    times = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        model.run(crop)
        times[i] = (time.perf_counter() - t) * 1e3
    return times


def measure_latency(model_path: str | Path, crop: np.ndarray | None, threads: int, xnnpack: bool = True,
                    warmup: int = 5, runs: int = 50, runtime: str | None = None) -> dict:
    """Median, p90, p99 and mean milliseconds in this process, with the runtime and delegate that produced them.

    crop: (H, W, 3) uint8, or None for mid-grey pixels. ``model_rss_mb`` is what loading and running the model
    added to this process's resident memory once the runtime was imported (where /proc tells); ``peak_rss_mb`` is
    the process's peak.
    """
    import_runtime(runtime)
    before = current_rss_mb()
    model = TFLiteModel(model_path, num_threads=threads, xnnpack=xnnpack, runtime=runtime)
    if crop is None:
        crop = np.full((model.input.shape[1], model.input.shape[2], 3), 128, np.uint8)
    times = time_runs(model, crop, warmup, runs)
    peak = peak_rss_mb()
    return {"threads": threads, "xnnpack": xnnpack, "delegate": model.delegate, "runtime": model.runtime_label,
            "median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
            "p99_ms": float(np.percentile(times, 99)), "mean_ms": float(times.mean()), "min_ms": float(times.min()),
            "runs": runs, "warmup": warmup, "peak_rss_mb": peak,
            "model_rss_mb": None if before is None else max(peak - before, 0.0), "isolated": False}


def measure_isolated(model_path: str | Path, crop: np.ndarray | None, threads: int, xnnpack: bool = True,
                     warmup: int = 5, runs: int = 50, runtime: str | None = None) -> dict:
    """``measure_latency`` in a fresh Python process (``python -m tflite.benchmark --json``)."""
    with tempfile.TemporaryDirectory(prefix="tfpose-bench-") as tmp:
        cmd = [sys.executable, "-m", "tflite.benchmark", str(model_path), "--threads", str(threads),
               "--xnnpack", "on" if xnnpack else "off", "--warmup", str(warmup), "--runs", str(runs), "--json"]
        if runtime:
            cmd += ["--runtime", runtime]
        if crop is not None:
            np.save(Path(tmp) / "crop.npy", crop)
            cmd += ["--crop", str(Path(tmp) / "crop.npy")]
        # the child must find this package even when it runs from a source checkout that was never installed
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"latency run failed ({tail})", path=model_path)
    return {**json.loads(run.stdout.strip().splitlines()[-1]), "isolated": True}


def benchmark(model_path: str | Path, crop: np.ndarray | None = None, threads=(1, 2), xnnpack=(True, False),
              warmup: int = 5, runs: int = 50, runtime: str | None = None, isolate: bool = True) -> list[dict]:
    """One ``measure_latency`` row per (XNNPACK on/off, thread count)."""
    measure = measure_isolated if isolate else measure_latency
    return [measure(model_path, crop, t, x, warmup, runs, runtime) for x in xnnpack for t in threads]


def current_rss_mb() -> float | None:
    """Resident memory of this process now (Linux and Android /proc), or None elsewhere."""
    return _proc_status_mb("VmRSS")


def peak_rss_mb() -> float:
    """Peak resident memory of this process. /proc's VmHWM starts afresh at exec; ``ru_maxrss`` (the fallback)
    can carry the peak of the parent that spawned us, so it is used only where /proc is missing."""
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024   # bytes on macOS, KiB elsewhere


def _proc_status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def to_markdown(rows: list[dict]) -> str:
    lines = ["| threads | delegate | median ms | p90 ms | p99 ms | model memory MB | runtime |", "|---" * 7 + "|"]
    for r in rows:
        mem = "" if r.get("model_rss_mb") is None else f"{r['model_rss_mb']:.1f}"
        lines.append(f"| {r['threads']} | {r['delegate']} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {mem} | {r['runtime']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tflite.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--xnnpack", choices=("on", "off"), nargs="+", default=["on", "off"])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--runtime", help="ai_edge_litert or tflite_runtime (default: the first installed)")
    parser.add_argument("--crop", help="a .npy (H, W, 3) uint8 crop to time (default: mid-grey pixels)")
    parser.add_argument("--json", action="store_true", help="measure here and print one JSON line per setting")
    args = parser.parse_args(argv)
    xnnpack = [x == "on" for x in args.xnnpack]
    try:
        crop = np.load(args.crop) if args.crop else None
        if args.json:
            for x in xnnpack:
                for t in args.threads:
                    print(json.dumps(measure_latency(args.model, crop, t, x, args.warmup, args.runs, args.runtime)))
            return 0
        print(to_markdown(benchmark(args.model, crop, args.threads, xnnpack, args.warmup, args.runs, args.runtime)))
    except (TfposeError, ImportError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
