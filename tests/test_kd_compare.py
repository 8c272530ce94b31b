"""The paired bootstrap that ranks two students on the same persons (benchmarks/kd_compare.py)."""

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
