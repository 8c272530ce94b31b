"""Benchmark helpers: the Pareto front of accuracy against latency (pareto.py). The paired bootstrap that ranks
students on the same persons is tfpose.evaluation.paired_gaps (tests/test_evaluation.py)."""

def test_pareto_front_keeps_only_the_points_nothing_beats_on_both_axes():
    from benchmarks.pareto import pareto_front

    rows = [{"label": "fast", "latency_ms": 0.2, "mean_OKS": 0.10}, {"label": "slow better", "latency_ms": 0.5,
            "mean_OKS": 0.20}, {"label": "dominated", "latency_ms": 0.6, "mean_OKS": 0.15},
            {"label": "same point, other label", "latency_ms": 0.2, "mean_OKS": 0.10}]
    assert [r["label"] for r in pareto_front(rows)] == ["fast", "same point, other label", "slow better"]
