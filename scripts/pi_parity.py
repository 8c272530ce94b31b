"""Cross-architecture parity for scripts/pi_smoke.sh: the same int8 model on the same crops, here and in the Pi userland.

``dump`` runs a tfpose .tflite on the crops of its ``.reference.npz`` (numpy + a TFLite runtime, no TensorFlow, so
it runs inside the emulated Pi userland) and saves the raw heatmaps with the output's int8 step. ``summarize`` puts
each emulated run beside the host's run with the same kernels (XNNPACK, or the builtin ones where the runtime does
not apply XNNPACK, as tflite-runtime 2.14 on int8) and writes summary.json and summary.md; it fails (exit 1) when one
differs from the host's by more than ``--max-steps`` int8 steps. XNNPACK and the builtin kernels round differently,
so the host's two runs are compared too, for information.

    python scripts/pi_parity.py dump model.tflite model.reference.npz x86_64.npz [--no-xnnpack]
    python scripts/pi_parity.py summarize --out runs/pi_smoke --host x86_64 --arch arm64 armhf
Shape legend: M reference crops, h x w heatmap cells, K joints.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np


def dump(model_path: str, reference: str, out: str, threads: int = 1, xnnpack: bool = True) -> dict:
    """Heatmaps (M, h, w, K) dequantized, decoded keypoints (M, K, 2) and scores (M, K), with the runtime used."""
    from tflite.adapters import HeatmapAdapter, load_adapter

    adapter = load_adapter(model_path, num_threads=threads, xnnpack=xnnpack)
    if not isinstance(adapter, HeatmapAdapter):
        raise SystemExit(f"error: {model_path} is not a tfpose export (no heatmap metadata)")
    crops = np.load(reference)["crops"]
    heatmaps = adapter.model(crops)
    keypoints, scores = adapter.codec.decode(heatmaps)
    info = {"arch": platform.machine(), "runtime": adapter.model.runtime_label, "delegate": adapter.model.delegate,
            "threads": threads, "output_dtype": adapter.model.output.dtype.name,
            "output_scale": adapter.model.output.scale, "output_zero_point": adapter.model.output.zero_point}
    np.savez_compressed(out, heatmaps=heatmaps, keypoints=keypoints, scores=scores, info=json.dumps(info))
    return info


def compare(a: dict, b: dict) -> dict:
    """How far two dumps of the same model are apart: heatmaps in output quantization steps, keypoints in pixels."""
    step = json.loads(str(a["info"]))["output_scale"] or 1.0      # float outputs: steps read as raw differences
    steps = np.rint(np.abs(a["heatmaps"].astype(np.float64) - b["heatmaps"]) / step).astype(np.int64)
    shift = np.linalg.norm(a["keypoints"] - b["keypoints"], axis=-1)
    return {"crops": int(len(steps)), "values": int(steps.size), "max_int8_steps": int(steps.max()),
            "values_differing": int((steps > 0).sum()), "fraction_differing": float((steps > 0).mean()),
            "max_keypoint_shift_px": float(shift.max()), "max_score_diff": float(np.abs(a["scores"] - b["scores"]).max())}


def summarize(out: Path, host: str, arches: list[str], max_steps: int, timings: dict) -> tuple[dict, bool]:
    """summary.json / summary.md under ``out`` from ``out/<arch>/report.json`` and ``out/<arch>/outputs.npz`` (the
    host also has ``outputs_builtin.npz``, its run with XNNPACK off)."""
    runs, ok = {}, True
    refs = {"XNNPACK": np.load(out / host / "outputs.npz"), "builtin": np.load(out / host / "outputs_builtin.npz")}
    for arch in [host, *arches]:
        report = json.loads((out / arch / "report.json").read_text())
        dumped = np.load(out / arch / "outputs.npz")
        info = json.loads(str(dumped["info"]))
        acc, par = report.get("accuracy", {}), report.get("parity", {})
        entry = {"arch": info["arch"], "runtime": info["runtime"], "delegate": info["delegate"],
                 "python": report["machine"]["python"], "cpu": report["machine"]["cpu"],
                 "AP": acc.get("AP"), "PCK@0.2": acc.get("PCK@0.2"), "persons": acc.get("persons"),
                 "parity_max_abs_diff": par.get("max_abs_diff"), "parity_within_1_cell": par.get("joints_within_1_cell"),
                 "latency_ms": {f"{r['threads']}t{'' if r['xnnpack'] else ' no-xnnpack'}": r["median_ms"]
                                for r in report.get("latency", [])},
                 "seconds": timings.get(arch, {})}
        if arch != host:
            kernels = "XNNPACK" if info["delegate"].startswith("XNNPACK") else "builtin"
            entry["vs_host"] = {"host_kernels": kernels, **compare(refs[kernels], dumped)}
            ok &= entry["vs_host"]["max_int8_steps"] <= max_steps
        runs[arch] = entry
    summary = {"host": host, "max_int8_steps_allowed": max_steps, "passed": bool(ok), "runs": runs,
               "host_xnnpack_vs_builtin": compare(refs["XNNPACK"], refs["builtin"])}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(to_markdown(summary))
    return summary, ok


def to_markdown(summary: dict) -> str:
    runs = summary["runs"]
    threads = sorted({t for r in runs.values() for t in r["latency_ms"]})
    head = ["userland", "Python", "runtime, delegate (1 thread)", "OKS AP", "PCK@0.2", "parity vs Keras: max |diff|",
            "joints within 1 cell", "vs host, same kernels: max int8 steps", "values differing",
            "max keypoint shift px"]
    head += [f"{t} ms" for t in threads]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in runs.items():
        v = r.get("vs_host")
        cells = [f"{name} ({r['arch']})", r["python"], f"{r['runtime']}, {r['delegate']}", _f(r["AP"]), _f(r["PCK@0.2"]),
                 _f(r["parity_max_abs_diff"], 4), _pct(r["parity_within_1_cell"]),
                 "(reference)" if v is None else f"{v['max_int8_steps']} (host {v['host_kernels']})",
                 "" if v is None else f"{v['values_differing']} of {v['values']}",
                 "" if v is None else f"{v['max_keypoint_shift_px']:.3f}"]
        cells += [_f(r["latency_ms"].get(t), 2) for t in threads]
        lines.append("| " + " | ".join(cells) + " |")
    x = summary["host_xnnpack_vs_builtin"]
    verdict = "PASS" if summary["passed"] else "FAIL"
    return "\n".join(lines) + (
        f"\n\n{verdict}: every emulated run is within {summary['max_int8_steps_allowed']} int8 step(s) of the host's "
        f"run with the same kernels, on the {x['crops']} reference crops. On the host, XNNPACK and the builtin kernels "
        f"differ by up to {x['max_int8_steps']} int8 steps ({100 * x['fraction_differing']:.1f} % of values; keypoints "
        f"up to {x['max_keypoint_shift_px']:.2f} px apart).\n")


def _f(v, digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "" if v is None else f"{100 * v:.1f} %"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/pi_parity.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="run the model on its reference crops and save the outputs")
    d.add_argument("model")
    d.add_argument("reference")
    d.add_argument("out")
    d.add_argument("--threads", type=int, default=1)
    d.add_argument("--no-xnnpack", action="store_true", help="the builtin kernels")
    s = sub.add_parser("summarize", help="compare every userland's outputs with the host's; write summary.*")
    s.add_argument("--out", required=True, help="folder holding <arch>/report.json and <arch>/outputs.npz")
    s.add_argument("--host", required=True)
    s.add_argument("--arch", nargs="+", required=True)
    s.add_argument("--max-steps", type=int, default=1)
    s.add_argument("--timings", help="JSON {arch: {stage: seconds}}", default="{}")
    args = parser.parse_args(argv)
    if args.command == "dump":
        print(json.dumps(dump(args.model, args.reference, args.out, args.threads, not args.no_xnnpack)))
        return 0
    summary, ok = summarize(Path(args.out), args.host, args.arch, args.max_steps, json.loads(args.timings))
    print((Path(args.out) / "summary.md").read_text(), end="")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
