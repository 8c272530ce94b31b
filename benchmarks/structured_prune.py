"""Which channel saliency ranks best on the pretrained default student: one-shot channel pruning (no fine-tuning)
to equal MACs, each result against the unpruned model on real dev-val crops, and the MAC budget's arithmetic.

    python benchmarks/structured_prune.py [--target-gmacs 0.203] [--runs 50] [--write]   # about 6 minutes on 2 cores

The student is the default's architecture (MobileNetV2 + MoveNet's pyramid, 192x256) with MoveNet Lightning's
weights (``../shared/models/init``). Fisher and Taylor saliency come from the same gate gradients on 8 batches of
16 training crops (every source, drawn by weight; ground-truth cross-entropy, the default's loss without its
teacher). Every criterion prunes to the same MAC target; the pruned models are scored on coco-mini val and
PARSE's test half against ground truth and against the unpruned model's own heatmaps (how much of its function
survives: what fine-tuning starts from). MACs are also counted in the converted .tflite files (``tflite.macs``)
of MoveNet Lightning, the shipped default student and a pruned int8 student.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

from benchmarks._sections import publish  # noqa: E402

SHARED = ROOT.parent / "shared"
MOVENET = SHARED / "models/init/movenet-lightning-keras.h5"
LIGHTNING = SHARED / "models/movenet-peers/movenet-lightning_fp32.tflite"
ALLOCATIONS = (   # label, criterion, allocation, only the expansion groups
    ("uniform, every group", "fisher", "uniform", False), ("uniform, expansion groups only", "fisher", "uniform", True),
    ("global, Taylor per MAC", "taylor", "global", False), ("global, Fisher per MAC", "fisher", "global", False))
RANKINGS = ("random", "bn", "magnitude", "taylor", "fisher")
SIZES = ((192, 256), (192, 224), (160, 256), (192, 192), (160, 224), (160, 192))   # (W, H), multiples of 32


def context(size):
    from tfpose.config import load_config
    from tfpose.pipeline import load_data, make_context

    ctx = make_context(load_config(ROOT / "configs/default_student.yaml",
                                   [f"codec.input_size=[{size[0]}, {size[1]}]"]), tempfile.mkdtemp())
    with contextlib.redirect_stdout(io.StringIO()):
        load_data(ctx)
    return ctx


def student(size):
    from tfpose.models import build_model
    from tfpose.models.init import initialise

    model = build_model("mobilenetv2", 17, size, width=1.0, head="fpn")
    initialise(model, str(MOVENET))
    return model


def score(ctx, model) -> tuple[dict, np.ndarray]:
    """({set: metrics}, every crop's heatmaps (N, h, w, K), the sets one after the other)."""
    from tfpose.evaluation import evaluate_predictor

    maps, metrics = [], {}

    def predict(crops):
        out = model.predict_on_batch(crops.astype(np.float32))
        maps.append(np.asarray(out))
        return out

    for name, dataset in ctx.val_sets.items():
        metrics[name], _ = evaluate_predictor(predict, dataset, ctx.codec, ctx.skeleton, ctx.cfg.data.padding,
                                              ap_resamples=0)
    return metrics, np.concatenate(maps)


def agreement(maps: np.ndarray, reference: np.ndarray, confident: float = 0.1) -> tuple[float, float]:
    """(heatmap RMSE, share of the reference's confident joints (peak >= ``confident``) whose peak cell is within
    one cell of the reference's) over (N, h, w, K) heatmaps."""
    n, h, w, k = maps.shape
    flat, ref = maps.reshape(n, h * w, k), reference.reshape(n, h * w, k)
    a, b = flat.argmax(1), ref.argmax(1)
    near = (np.abs(a // w - b // w) <= 1) & (np.abs(a % w - b % w) <= 1)
    mask = ref.max(1) >= confident
    return float(np.sqrt(np.mean((maps - reference) ** 2))), float(near[mask].mean())


def gradients(ctx, model, graph, batches: int = 8, batch: int = 16) -> np.ndarray:
    from tfpose.data.pipeline import build_dataset
    from tfpose.structured_prune import gate_gradients

    sampler, draw = ctx.training_sampler(with_unlabelled=False, augment=False)
    data = build_dataset(sampler, batch, training=True, seed=0, probabilities=draw)
    return gate_gradients(model, graph, data, batches, heatmap_loss=ctx.cfg.distill.heatmap_loss)


HEADER = ("| method | GMAC | coco-mini val mean OKS | PCK@0.2 | PARSE test mean OKS | PCK@0.2 | heatmap RMSE vs "
          "unpruned | peaks within 1 cell of unpruned |\n|---|---|---|---|---|---|---|---|")


def row(label, gmacs, metrics, agree=None) -> str:
    v, p = metrics["val"], metrics["parse:test"]
    tail = f"{agree[0]:.4f} | {100 * agree[1]:.1f} %" if agree else "- | -"
    return (f"| {label} | {gmacs:.4f} | {v['mean_OKS']:.3f} | {v['PCK@0.2']:.3f} | {p['mean_OKS']:.3f} | "
            f"{p['PCK@0.2']:.3f} | {tail} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-gmacs", type=float, default=0.203, help="every method prunes to this")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per latency")
    parser.add_argument("--write", action="store_true", help="replace the `structured_prune` section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    from benchmarks.cpu_ceiling import share_of_ceiling
    from tflite.benchmark import measure_latency
    from tflite.convert import convert
    from tflite.macs import count_ops_macs
    from tfpose.artifacts import write_bytes
    from tfpose.flops import count_macs
    from tflite.validate import machine_info
    from tfpose.structured_prune import allocate, channel_graph, keep_top, prune_graph, saliency

    started = time.time()
    size = (192, 256)
    ctx, model = context(size), student(size)
    graph = channel_graph(model)
    base_metrics, base_maps = score(ctx, model)
    per_crop = gradients(ctx, model, graph)
    scores = {"fisher": 0.5 * np.mean(per_crop ** 2, axis=0), "taylor": np.mean(np.abs(per_crop), axis=0)}
    for criterion in ("random", "bn", "magnitude"):
        scores[criterion] = saliency(model, graph, criterion)
    print(f"saliency on {len(per_crop)} crops: {time.time() - started:.0f} s", flush=True)

    target = args.target_gmacs * 1e9
    base_row = row("unpruned, 192 x 256", count_macs(model) / 1e9, base_metrics, (0.0, 1.0))

    def evaluate(label, keep):
        pruned = prune_graph(model, graph, keep)
        metrics, maps = score(ctx, pruned)
        agree = agreement(maps, base_maps)
        print(row(label, count_macs(pruned) / 1e9, metrics, agree), flush=True)
        found[label] = (metrics["parse:test"]["mean_OKS"], agree[1])
        return pruned, agree, row(label, count_macs(pruned) / 1e9, metrics, agree)

    allocation_rows, kept, found = [base_row], {}, {}
    for label, criterion, allocation, expansions in ALLOCATIONS:
        pinned = [n for n in graph.sources if not n.endswith("_expand")] if expansions else []
        g = channel_graph(model, pinned) if expansions else graph
        keep, ratio = allocate(g, scores[criterion], target_macs=target, allocation=allocation)
        kept[label] = keep
        pruned, agree, text = evaluate(label, keep)
        text = text.replace(f"| {label} |", f"| {label}" + (f" (keep {ratio:.3f})" if ratio is not None else "") + " |")
        allocation_rows.append(text)
    # every criterion ranks inside the groups at the widths global Fisher chose: the ranking alone differs
    widths = [int(kept["global, Fisher per MAC"][c].sum()) for c in graph.groups]
    ranking_rows, results = [base_row], {}
    for criterion in RANKINGS:
        keep = keep_top(graph, scores[criterion], widths)
        pruned, agree, text = evaluate(criterion, keep)
        results[criterion] = (pruned, keep, agree)
        ranking_rows.append(text)
    rows = allocation_rows

    small = (160, 192)
    small_ctx, small_model = context(small), student(small)
    small_metrics, _ = score(small_ctx, small_model)
    rows.append(row(f"unpruned, {small[0]} x {small[1]} (smaller input instead)", count_macs(small_model) / 1e9,
                    small_metrics))

    # what `tfpose prune` does by default: Fisher ranking and global Fisher-per-MAC widths
    pruned, keep, _ = results["fisher"]
    work = Path(tempfile.mkdtemp())
    files = {"pruned": (work / "pruned_int8.tflite", pruned, ctx), "small": (work / "small_int8.tflite", small_model,
                                                                            small_ctx)}
    for path, m, c in files.values():
        sampler, draw = c.training_sampler(with_unlabelled=False, augment=False)
        picks = np.random.default_rng(0).choice(len(sampler), 32, replace=False, p=draw)
        write_bytes(path, convert(m, "int8", [sampler.sample(int(i)).crop.astype(np.float32) for i in picks]))
    timed = {"default student int8 (android_assets/model.tflite), 192 x 256": ROOT / "android_assets/model.tflite",
             "pruned student int8 (global Fisher), 192 x 256": files["pruned"][0],
             f"unpruned student int8, {small[0]} x {small[1]}": files["small"][0],
             "MoveNet Lightning fp32 (192 x 192, its four heads)": LIGHTNING}
    load = machine_info()["load_average_1min"]
    speed, latency = [], []
    for label, path in timed.items():
        macs = count_ops_macs(path)["macs"]
        ms = measure_latency(path, None, 1, runs=args.runs)["median_ms"]
        latency.append(ms)
        speed.append(f"| {label} | {macs / 1e9:.4f} | {ms:.2f} | {share_of_ceiling(macs, ms, 1):.2f} |")
    load = max(load, machine_info()["load_average_1min"])

    sizes = []
    for s in SIZES:
        m = student(s) if s != size else model
        g = channel_graph(m) if s != size else graph
        full = count_macs(m)
        if full <= target:
            sizes.append(f"| {s[0]} x {s[1]} | {full / 1e9:.4f} | 1 (no pruning) | {full / 1e9:.4f} |")
            continue
        k, r = allocate(g, saliency(m, g, "magnitude"), target_macs=target, allocation="uniform")
        sizes.append(f"| {s[0]} x {s[1]} | {full / 1e9:.4f} | {r:.3f} | {g.macs(k) / 1e9:.4f} |")

    from tfpose.structured_prune import ChannelPruneResult, report_markdown
    widths = {name: (len(c), int(keep[c].sum())) for name, c in zip(graph.group_names, graph.groups)}
    table = report_markdown(ChannelPruneResult(pruned, "fisher", "global", count_macs(model), count_macs(pruned), None,
                                               widths, {}))
    lines = [f"    python benchmarks/structured_prune.py --target-gmacs {args.target_gmacs:g} --runs {args.runs} "
             "--write", "",
             f"One-shot channel pruning (no fine-tuning) of the MoveNet-initialised default student (192 x 256, "
             f"{count_macs(model) / 1e9:.4f} GMAC) to {args.target_gmacs:g} GMAC, 0.75x MoveNet Lightning, by each "
             "saliency; groups keep multiples of 8 channels. Fisher and Taylor: gate gradients of the ground-truth "
             f"cross-entropy on {len(per_crop)} training crops. Scored on coco-mini val (35 people) and PARSE test "
             "(205) against ground truth, and against the unpruned model's heatmaps: RMSE, and the share of its "
             "confident joints (peak >= 0.1) whose peak stays within one cell.", "",
             "Allocation: how many channels each group keeps (Fisher ranking inside the groups, Taylor for its "
             "own row):", "", HEADER, *rows, "",
             "Ranking: every criterion ranks inside the groups at the widths global Fisher chose, so only the "
             "ranking differs. BN scale is exactly 1 in every MoveNet BatchNorm (the file folded their statistics "
             "into the convs), so `bn` keeps the first channels by index there, and ranks by filter norm, as "
             "`magnitude` does, where no BatchNorm follows (the pyramid):", "", HEADER, *ranking_rows, "",
             "MACs counted in the .tflite graphs (`python -m tflite.macs FILE`: CONV_2D, DEPTHWISE_CONV_2D, "
             "FULLY_CONNECTED, TRANSPOSE_CONV), 1-thread latency (ai-edge-litert, XNNPACK, median of "
             f"{args.runs}) and the rate as a share of this CPU's dense int8 rate (section `cpu_ceiling`), "
             f"measured in this run at a 1-minute load average up to {load:.2f} on 2 shared cores:", "",
             "| file | GMAC | 1-thread ms | share of dense int8 ceiling |", "|---|---|---|---|", *speed, "",
             f"The uniform keep ratio that brings each input size to {args.target_gmacs:g} GMAC (every group keeps "
             "that fraction, rounded to multiples of 8):", "",
             "| input W x H | GMAC unpruned | keep ratio | GMAC pruned |", "|---|---|---|---|", *sizes, "",
             "Widths after global Fisher allocation:", "", table,
             "Reading (one-shot, so this is what fine-tuning starts from, not where it ends):",
             f"- Allocation decides. A uniform ratio also thins the residual streams and the pyramid, which every "
             f"later layer reads: PARSE mean OKS {found['uniform, every group'][0]:.3f}. Fisher per MAC leaves those "
             "whole (see the widths) and thins the stem, the wide expansions of blocks 7-16, Conv_1 and the head's "
             f"separable conv: {found['global, Fisher per MAC'][0]:.3f} of "
             f"{base_metrics['parse:test']['mean_OKS']:.3f}; Taylor per MAC "
             f"{found['global, Taylor per MAC'][0]:.3f}.",
             f"- Ranking at equal widths: gradient saliency keeps {100 * found['taylor'][1]:.0f} % (Taylor) and "
             f"{100 * found['fisher'][1]:.0f} % (Fisher) of the unpruned peaks; weight criteria keep "
             f"{100 * max(found['magnitude'][1], found['bn'][1]):.0f} % at most, random "
             f"{100 * found['random'][1]:.0f} %. A filter's norm says little about what the channel does for the "
             "loss, and MoveNet's BatchNorms carry no scale.",
             f"- At equal MACs the smaller input (160 x 192, no pruning) keeps far more one-shot (PARSE mean OKS "
             f"{small_metrics['parse:test']['mean_OKS']:.3f}), in {latency[2]:.2f} ms against "
             f"{latency[1]:.2f} ms pruned, {latency[0]:.2f} ms unpruned and {latency[3]:.2f} ms for Lightning fp32. "
             "Which of the two is better after fine-tuning is the retraining's question.",
             "", f"Run time {time.time() - started:.0f} s."]
    publish("structured_prune", "\n".join(lines), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
