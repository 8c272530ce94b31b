"""Benchmark helpers: the paired bootstrap that ranks two students on the same persons (kd_compare.py) and the
Pareto front of accuracy against latency (pareto.py)."""

import numpy as np
import pytest

from benchmarks.kd_compare import paired_gap


def test_paired_gap_sees_a_consistent_small_lead_that_unpaired_spread_would_hide():
    rng = np.random.default_rng(1)
    b = rng.uniform(0.0, 0.6, 35)                  # persons differ far more than the students do
    a = b + 0.02 + rng.normal(0, 0.005, 35)
    gap, lo, hi = paired_gap(a, b)
    assert gap == pytest.approx(0.02, abs=0.003)
    assert 0 < lo < gap < hi < 0.03


def test_paired_gap_of_a_student_with_itself_is_exactly_zero():
    a = np.linspace(0, 1, 20)
    assert paired_gap(a, a) == (0.0, 0.0, 0.0)


def test_pareto_front_keeps_only_the_points_nothing_beats_on_both_axes():
    from benchmarks.pareto import pareto_front

    rows = [{"label": "fast", "latency_ms": 0.2, "mean_OKS": 0.10}, {"label": "slow better", "latency_ms": 0.5,
            "mean_OKS": 0.20}, {"label": "dominated", "latency_ms": 0.6, "mean_OKS": 0.15},
            {"label": "same point, other label", "latency_ms": 0.2, "mean_OKS": 0.10}]
    assert [r["label"] for r in pareto_front(rows)] == ["fast", "same point, other label", "slow better"]
