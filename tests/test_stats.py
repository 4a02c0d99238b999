"""The report's tests against textbook examples and SciPy's own answers."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from harness.stats import holm, mcnemar, paired, welch

# Student's sleep data (Cushny & Peebles 1905, as in R's `sleep`): extra hours of
# sleep of ten patients under two drugs. R: t.test(extra ~ group, paired = TRUE)
# gives t = -4.0621, df = 9, p = 0.002833, 95% CI -2.4598858 .. -0.7001142.
DRUG_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
DRUG_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_paired_t_matches_the_textbook_sleep_example() -> None:
    result = paired(DRUG_1, DRUG_2)
    assert result is not None
    assert result.n == 10
    assert result.diff == pytest.approx(-1.58)
    assert result.t == pytest.approx(-4.0621, abs=1e-4)
    assert result.p == pytest.approx(0.002833, abs=1e-6)
    assert (result.low, result.high) == pytest.approx((-2.4598858, -0.7001142), abs=1e-6)
    # Wilcoxon as SciPy computes it on the same differences.
    expected = scipy_stats.wilcoxon([a - b for a, b in zip(DRUG_1, DRUG_2, strict=True)])
    assert result.p_wilcoxon == pytest.approx(float(expected.pvalue))


def test_paired_differs_from_unpaired_on_paired_data() -> None:
    # The same numbers read as unpaired groups: the spread between patients hides the
    # drug effect (R: Welch p = 0.07939), which pairing removes.
    unpaired = welch(DRUG_1, DRUG_2)
    assert unpaired is not None and unpaired.p == pytest.approx(0.07939, abs=1e-5)
    assert paired(DRUG_1, DRUG_2).p < unpaired.p / 10


def test_wilcoxon_is_exact_for_few_seeds() -> None:
    # Five seeds, every difference positive: the exact two-sided p is 2 / 2**5.
    result = paired([0.5, 0.6, 0.7, 0.55, 0.65], [0.4, 0.42, 0.5, 0.5, 0.3])
    assert result.p_wilcoxon == pytest.approx(2 / 32)


def test_paired_edge_cases() -> None:
    assert paired([0.5], [0.4]) is None  # one shared seed: no test
    same = paired([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert (same.diff, same.p, same.p_wilcoxon) == (0.0, 1.0, 1.0)
    shifted = paired([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])  # a constant difference
    assert shifted.diff == pytest.approx(0.1) and math.isnan(shifted.p)
    with pytest.raises(ValueError, match="differ in length"):
        paired([0.1, 0.2], [0.1])


def test_mcnemar_exact_matches_the_binomial_textbook_value() -> None:
    # 10 discordant images, 1 one way and 9 the other: p = 2 * P(X <= 1 | n=10, 1/2)
    # = 2 * 11 / 1024.
    targets = [0] * 20
    a = [0] * 10 + [1] * 9 + [0]  # right on 0..9 and 19
    b = [0] * 10 + [0] * 9 + [1]  # right on 0..18
    result = mcnemar(a, b, targets)
    assert (result.n, result.only_a, result.only_b) == (20, 1, 9)
    assert result.p == pytest.approx(22 / 1024)


def test_mcnemar_of_identical_predictions_is_one() -> None:
    predictions = [0, 1, 2, 2, 1, 0, 3]
    targets = [0, 1, 1, 2, 0, 0, 3]
    result = mcnemar(predictions, list(predictions), targets)
    assert (result.only_a, result.only_b, result.p) == (0, 0, 1.0)
    with pytest.raises(ValueError, match="same images"):
        mcnemar([0, 1], [0], [0, 1])


def test_holm_matches_the_step_down_rule() -> None:
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> kept at 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    adjusted = holm([0.01, math.nan, 0.02])  # a comparison not made does not count
    assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.02)
    assert math.isnan(adjusted[1])
    assert holm([]) == []


def test_seed_noise_pools_the_within_network_spread() -> None:
    from harness.stats import seed_noise

    noise = seed_noise([[0.40, 0.44], [0.30, 0.36, 0.33], [0.5]])  # the single run adds nothing
    # Pooled variance: (0.02**2 * 2 + (0.03**2 * 2)) / (1 + 2) over squares about each mean.
    squares = (0.02**2 + 0.02**2) + (0.03**2 + 0.03**2 + 0.0)
    assert noise.networks == 2 and noise.runs == 5
    assert noise.pooled_sd == pytest.approx(math.sqrt(squares / 3))
    assert noise.largest_gap == pytest.approx(0.06)
    assert noise.threshold == pytest.approx(1.96 * math.sqrt(2) * noise.pooled_sd)
    assert seed_noise([[0.5], [0.4]]) is None
