"""The model zoo on this CPU: parameters and FLOPs of every registered model beside the papers' figures, and the
full-int8 TFLite latency of every student at one input size, in the same run as MoveNet Lightning and Thunder.

    python benchmarks/models.py --write      # measure, print, and rewrite the models section of BENCHMARKS.md

Students are built at their default width, converted to full int8 (uint8 in, int8 out) with random-pixel
calibration crops (fine for latency, meaningless for accuracy) and timed in ai-edge-litert with XNNPACK, batch 1.
MoveNet's fp32 and dynamic-range int8 files are both timed. All models take turns in rounds, so that the load of
a shared CPU falls on each alike; a latency is the median over all of a model's timed runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from benchmarks._sections import publish  # noqa: E402
from tfpose.artifacts import write_bytes  # noqa: E402

SHARED = Path(os.environ.get("TFPOSE_SHARED", ROOT.parent / "shared"))
PEERS = {"movenet_lightning": ("movenet-lightning_fp32.tflite", "movenet-lightning_int8dyn.tflite"),
         "movenet_thunder": ("movenet-thunder_fp32.tflite", "movenet-thunder_int8dyn.tflite")}
DEFAULT_STUDENT = "peleenet_duc"
# extra configurations worth a row beside the registry defaults and the published ones
VARIANTS = (("hourglass", dict(stacks=1)), ("hourglass", dict(stacks=4)), ("hourglass", dict(stacks=8, channels=128)),
            ("simplebaseline", dict(depth=18)), ("mobilenetv2", dict(width=0.5)), ("shufflenetv2", dict(width=0.5)))


def size_rows() -> list[dict]:
    """Every registered model at its paper's input size, then the published and the extra configurations."""
    from tfpose._keras import keras
    from tfpose.flops import macs_by_layer
    from tfpose.models import build_model, get_spec, list_models
    from tfpose.models.published import PUBLISHED

    defaults = {p.model: p for p in PUBLISHED if not p.config and not p.part}
    jobs = [(s.name, {}, s.input_size, (), defaults.get(s.name)) for s in list_models()]
    jobs += [(p.model, p.config, p.input_size, p.part, p) for p in PUBLISHED if p.config or p.part]
    jobs += [(name, config, get_spec(name).input_size, (), None) for name, config in VARIANTS]
    rows = []
    for name, config, size, part, paper in jobs:
        keras.backend.clear_session()
        model = build_model(name, 17, size, **config)
        macs = macs_by_layer(model)
        chosen = [layer for layer in model.layers if not part or layer.name.startswith(part)]
        rows.append({"model": name, "role": get_spec(name).role, "input": size, "paper": paper,
                     "config": ", ".join(f"{k}={v}" for k, v in config.items()), "part": "decoder" if part else "",
                     "params_m": sum(layer.count_params() for layer in chosen) / 1e6,
                     "gmacs": sum(macs[layer.name] for layer in chosen) / 1e9})
        print(f"  size  {name} {rows[-1]['config']} {rows[-1]['part']}: {rows[-1]['params_m']:.2f} M", flush=True)
    return rows


def convert_students(input_size: tuple[int, int], out: Path, calibration: int, names=None) -> dict[str, dict]:
    """{name: {path, gflops, params_m}}: each student (or ``names``) at ``input_size`` as a full-int8 .tflite."""
    from tflite.convert import convert
    from tfpose.flops import count_macs
    from tfpose.models import build_model, deployable, list_models

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (calibration, input_size[1], input_size[0], 3)).astype(np.float32)
    students = {}
    for spec in list_models():
        if spec.role != "student" or (names and spec.name not in names):
            continue
        started = time.perf_counter()
        model = deployable(build_model(spec.name, 17, input_size))
        path = out / f"{spec.name}_{input_size[0]}x{input_size[1]}_int8.tflite"
        write_bytes(path, convert(model, "int8", crops))
        students[spec.name] = {"path": path, "gflops": 2 * count_macs(model) / 1e9,
                               "params_m": model.count_params() / 1e6}
        print(f"  int8  {spec.name}: {time.perf_counter() - started:.0f} s", flush=True)
    return students


def xnnpack_partitions(path: Path) -> int:
    """How many pieces XNNPACK takes the graph in (1: all of it); between them, builtin kernels run."""
    from tflite.runtime import TFLiteModel

    ops = TFLiteModel(path).interpreter._get_ops_details()  # noqa: SLF001 - no public view of the delegated plan
    return sum(op["op_name"] == "DELEGATE" for op in ops)


def time_rounds(paths: dict[str, Path], threads: int, rounds: int, per_round: int,
                warmup: int) -> dict[str, np.ndarray]:
    """{label: (rounds * per_round,) ms}: every model runs ``per_round`` times per round, in turn."""
    from tflite.benchmark import time_runs
    from tflite.runtime import TFLiteModel

    models = {label: TFLiteModel(path, num_threads=threads) for label, path in paths.items()}
    rng = np.random.default_rng(1)
    crops = {label: rng.integers(0, 256, (m.input.shape[1], m.input.shape[2], 3), dtype=np.uint8)
             for label, m in models.items()}
    for label, m in models.items():
        time_runs(m, crops[label], warmup, 1)
    times = {label: [] for label in models}
    for _ in range(rounds):
        for label, m in models.items():
            times[label].append(time_runs(m, crops[label], 0, per_round))
    return {label: np.concatenate(t) for label, t in times.items()}


def _ratio_text(ratio: float) -> str:
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


def sizes_markdown(rows: list[dict]) -> str:
    lines = ["| model | role | configuration | input WxH | params M | GMACs | GFLOPs | paper params M | paper GFLOPs "
             "| params vs paper | paper, note |", "|---" * 11 + "|"]
    for r in rows:
        p = r["paper"]
        config = ", ".join(filter(None, [r["config"] or "default", r["part"] and "decoder only"]))
        versus = f"{100 * (r['params_m'] / p.params_m - 1):+.1f} %" if p else ""
        cited = f"{p.params_m:.2f} | {p.gflops:.2f}" if p else " | "
        source = ", ".join(filter(None, [p.source, p.note])) if p else ""
        lines.append(f"| {r['model']} | {r['role']} | {config} | {r['input'][0]}x{r['input'][1]} | {r['params_m']:.2f} "
                     f"| {r['gmacs']:.2f} | {2 * r['gmacs']:.2f} | {cited} | {versus} | {source} |")
    return "\n".join(lines)


def latency_markdown(students: dict, peers: dict, times: dict, threads: list[int]) -> tuple[str, str]:
    """The latency table, and the sentence comparing the default student with MoveNet Lightning's fastest file
    (the faster of its fp32 and int8dyn files, chosen per thread count)."""
    med = {label: {t: float(np.median(times[t][label])) for t in threads} for label in times[threads[0]]}
    fastest = {t: {peer: min(files, key=lambda f: med[f][t]) for peer, files in peers.items()} for t in threads}
    light = {t: med[fastest[t]["movenet_lightning"]][t] for t in threads}
    head = " | ".join(f"{t} thread{'s' * (t > 1)} ms" for t in threads)
    ratios = " | ".join(f"Lightning / this, {t} t" for t in threads)
    lines = [f"| model | file | GFLOPs | params M | .tflite MB | XNNPACK partitions | {head} | {ratios} |",
             "|---" * (6 + 2 * len(threads)) + "|"]
    for label, info in {**students, **{f: info for files in peers.values() for f, info in files.items()}}.items():
        best = [t for t in threads if label in fastest[t].values()]
        mark = f" (fastest of its pair at {', '.join(map(str, best))} t)" if best else ""
        cells = " | ".join(f"**{med[label][t]:.2f}**" if t in best else f"{med[label][t]:.2f}" for t in threads)
        ratio = " | ".join(f"{light[t] / med[label][t]:.2f}" for t in threads)
        gflops = f"{info['gflops']:.2f}" if info.get("gflops") else ""
        params = f"{info['params_m']:.2f}" if info.get("params_m") else ""
        lines.append(f"| {info.get('model', label)}{mark} | {info['path'].name} | {gflops} | {params} | "
                     f"{info['path'].stat().st_size / 2**20:.2f} | {info['partitions']} | {cells} | {ratio} |")
    verdict = ""
    if DEFAULT_STUDENT in med:
        own = med[DEFAULT_STUDENT]
        parts = [f"{t} thread{'s' * (t > 1)}: {own[t]:.2f} ms against {light[t]:.2f} ms "
                 f"({fastest[t]['movenet_lightning']}), {_ratio_text(light[t] / own[t])}" for t in threads]
        verdict = (f"**The default student ({DEFAULT_STUDENT}, int8, {students[DEFAULT_STUDENT]['size']}) against "
                   f"MoveNet Lightning's fastest file (192x192):** " + "; ".join(parts) + ".")
    if len(threads) > 1 and all(med[label][threads[-1]] > med[label][threads[0]] for label in med):
        verdict += (f"\n\nEvery model ran slower on {threads[-1]} threads than on {threads[0]}: the other jobs kept "
                    "the second core busy, so that column measures contention, not scaling.")
    return "\n".join(lines), verdict


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-size", default="192x256", help="WxH of every student (default 192x256)")
    parser.add_argument("--students", nargs="+", help="registry names (default: every student)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=5, help="timed runs of each model per round")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--calibration", type=int, default=8, help="random calibration crops")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared folder beside the project")
    parser.add_argument("--out", type=Path, help="keep the .tflite files here (default: a temporary folder)")
    parser.add_argument("--no-sizes", action="store_true", help="skip the size table")
    parser.add_argument("--write", action="store_true", help="rewrite the models section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.input_size.lower().split("x"))
    argv = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/models.py " + " ".join(shlex.quote(a) for a in argv)

    from tflite.runtime import TFLiteModel

    peer_dir = args.shared / "models/movenet-peers"
    peers = {peer: {f: {"path": peer_dir / f, "model": f"{peer} {f.split('_')[-1].split('.')[0]}"} for f in files}
             for peer, files in PEERS.items()}
    missing = [str(i["path"]) for files in peers.values() for i in files.values() if not i["path"].is_file()]
    if missing:
        print(f"error: MoveNet files missing: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows = [] if args.no_sizes else size_rows()
    with tempfile.TemporaryDirectory(prefix="tfpose-zoo-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        students = convert_students((width, height), out, args.calibration, args.students)
        for name, info in students.items():
            info["size"] = f"{width}x{height}"
        everything = {**students, **{f: i for files in peers.values() for f, i in files.items()}}
        for info in everything.values():
            info["partitions"] = xnnpack_partitions(info["path"])
        paths = {label: info["path"] for label, info in everything.items()}
        times, load = {}, os.getloadavg()[0]
        for t in args.threads:
            print(f"  timing {len(paths)} models, {t} thread(s), {args.rounds} x {args.per_round} runs", flush=True)
            times[t] = time_rounds(paths, t, args.rounds, args.per_round, args.warmup)
        table, verdict = latency_markdown(students, peers, times, args.threads)
        runtime = TFLiteModel(paths[next(iter(paths))]).runtime_label
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    text = SECTION.format(
        command=command, cpu=cpu, cpus=os.cpu_count(), load=load, date=time.strftime("%Y-%m-%d"), runtime=runtime,
        size=f"{width} x {height}", runs=args.rounds * args.per_round,
        sizes=sizes_markdown(rows) if rows else "(skipped)",
        latency=table, verdict=verdict)
    publish("models", text, args.write)
    return 0


SECTION = """
## Model zoo: parameters, FLOPs and int8 latency

Measured with `{command}` on {date}: {cpu}, {cpus} CPUs, **shared with other jobs during the run** (load average
{load:.2f} when the timing began), so read medians and the ratios within this one run, not absolute speed.

### Sizes

Parameters include BatchNorm. **GFLOPs = 2 x multiply-adds** (Park et al.'s convention), GMACs = multiply-adds,
of conv, depthwise, transposed-conv and dense layers (BN folds into convs; activations, additions and pooling are
not counted; `tfpose/flops.py`), batch 1, K = 17. `tfpose models [--input-size WxH]` prints the same for the
registry defaults.

{sizes}

- Park et al.'s students use the **DUC decoder** (first stage half the encoder width, then 128, 64, as their
  PeleeNet one: 704 -> 352): it lands every published size within 6 %; the deconv(256, 256, 256) head would add
  about 5 M (its 4.98 M on PeleeNet is reproduced above). Their GFLOPs are matched within 1 % for PeleeNet + DUC
  (4 % for the DUC alone), and sit 10-25 % above ours for the other encoders (their counter may count BN and
  activations too, or their DUC widths differ: unverified).
- Transposed convs count input cells x kernel x channels; PyTorch counters count them per output cell, 4x more for
  4x4 stride 2: Park et al.'s 9.19 GFLOPs deconv head is our 2.3.
- Hourglass: our 8-stack, 256-channel teacher matches the 8-stage 25.6 M Park et al. quote (and its "26.2 GFLOPs",
  which equal our multiply-adds, not twice them). Their encoder table's 1/2/4-stack hourglasses (7.17 / 13.5 /
  26.0 M) are about twice ours per stack, and heavier than their own 8-stage one, so they are not Newell's design.
- MnasNet is torchvision's `mnasnet1_0` (B1, no squeeze-excite); EfficientPose's slim head sits on MobileNetV2
  blocks at stride 16 (its NAS backbone is not reproducible), so only its head is the paper's.

### int8 latency at W x H = {size} (the papers' "256x192") beside MoveNet

{runtime} with XNNPACK, batch 1, median of {runs} timed runs per model and thread count, all models
taking turns in the same rounds. Students: full int8, uint8 input, random-pixel calibration (latency only).
MoveNet: int32 input at 192x192 (Lightning) and 256x256 (Thunder), fp32 and dynamic-range int8 files.
"XNNPACK partitions" > 1 means operators between the pieces ran on builtin kernels. In ai-edge-litert 2.3 (found
with single-operator models) XNNPACK leaves these int8 operators out: AVERAGE_POOL_2D (PeleeNet's transitions),
HARD_SWISH (MobileNetV3), RESIZE_NEAREST_NEIGHBOR (the hourglass' upsampling) and a lone RELU after a biased
TRANSPOSE_CONV (deconv and slim heads); it takes MEAN, MUL, DEPTH_TO_SPACE, TRANSPOSE and SPLIT.

{latency}

{verdict}
"""


if __name__ == "__main__":
    sys.exit(main())
