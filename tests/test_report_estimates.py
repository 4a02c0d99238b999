"""The report's estimators section: its numbers are validate.py's on the same data."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from harness.estimate.validate import correlate, verdict
from harness.report import build_html
from harness.report.estimates import NO_SCORES, TOP_K
from harness.store import Store
from harness.tables import number

# (arch, params, val accs over seeds, synflow score, naswot score)
CANDIDATES = [
    ("RRR|IIII", 6_000, [0.40, 0.44], 1.0, 9.0),
    ("RRI|IIII", 1_000, [0.50], 3.0, 8.0),
    ("RII|IIII", 5_000, [0.45], 2.0, 7.5),
    ("IRR|IIII", 2_000, [0.60], 5.0, 7.0),
    ("IIR|IIII", 4_000, [0.55], 4.0, 6.0),
    ("III|IIII", 3_000, [0.70], 6.0, 5.0),
]


def _section(page: str) -> str:
    start = page.index('<section id="estimators">')
    return page[start : page.index("</section>", start)]


class _Cells(HTMLParser):
    """The text of every row of the table with id `estimators`."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.inside = self.cell = False

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == "estimators":
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif tag in ("td", "th"):
            self.cell = False

    def handle_data(self, data):
        if self.inside and self.cell:
            self.rows[-1][-1] += data


def _fill(store: Store, record_trial, *, scores: bool) -> dict[str, list[float]]:
    """Trials of every candidate; with `scores`, params/synflow/naswot estimates of each.
    Returns each estimator's scores and the mean accuracies, in CANDIDATES order."""
    out: dict[str, list[float]] = {"params": [], "synflow": [], "naswot": [], "acc": []}
    for arch, params, accs, synflow, naswot in CANDIDATES:
        for seed, acc in enumerate(accs):
            made = record_trial(store, arch=arch, params=params, seed=seed, val_acc=acc)
        out["acc"].append(sum(accs) / len(accs))
        if not scores:
            continue
        for name, value in (("params", params), ("synflow", synflow), ("naswot", naswot)):
            store.record_estimate(
                made.candidate_id, name, value, seconds=0.25, data_fingerprint="fp0", seed=0
            )
            out[name].append(float(value))
        # A newer score on other data must not join these trials (nor replace the above).
        store.record_estimate(
            made.candidate_id, "synflow", -99.0, seconds=9.0, data_fingerprint="other", seed=0
        )
    return out


@pytest.fixture
def scored(tmp_path, record_trial):
    with Store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        values = _fill(store, record_trial, scores=True)
        page = build_html(store, ["demo"])
    return page, values


def test_numbers_are_validate_py_s_on_the_same_data(scored):
    page, values = scored
    parser = _Cells()
    parser.feed(_section(page))
    header, *rows = parser.rows
    assert header[0] == "estimator" and len(rows) == 3
    by_name = {row[0]: row for row in rows}
    acc = values["acc"]
    tau_params = correlate(values["params"], acc, top_k=TOP_K)["tau"]
    for name in ("params", "synflow", "naswot"):
        expected = correlate(
            values[name], acc, params=None if name == "params" else values["params"], top_k=TOP_K
        )
        row = by_name[name]
        assert row[1] == str(len(CANDIDATES))
        assert row[2] == number(expected["rho"])
        assert row[3] == f"({number(expected['rho_ci'][0])}, {number(expected['rho_ci'][1])})"
        assert row[4] == number(expected["tau"])
        assert row[5] == f"({number(expected['tau_ci'][0])}, {number(expected['tau_ci'][1])})"
        assert row[6] == number(expected["tau_minus_params"])
        assert row[8].startswith(f"{expected['overlap']} / {expected['top_k']}")
        assert row[9] == number(0.25, 4)  # the other data's 9 s score is not among them
        if name != "params":
            want = verdict(name, expected["tau"], tau_params, expected["tau_minus_params_ci"])
            assert row[10] == want


def test_the_page_names_estimators_no_better_than_params_and_draws_them(scored):
    page, _ = scored
    section = _section(page)
    # synflow ranks exactly as training; naswot falls as accuracy rises, below params.
    weak = re.search(r'class="note estimators-weak">([^<]*)<', section)
    assert weak is not None and "naswot" in weak.group(1) and "synflow" not in weak.group(1)
    assert "Pipeline check, not a finding" in section  # synthetic data
    assert 'id="fig-estimators"' in section
    for name in ("params", "synflow", "naswot"):
        assert f'"name":"{name}"' in section  # a panel each


def test_without_scores_the_section_is_one_line(tmp_path, record_trial):
    with Store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        _fill(store, record_trial, scores=False)
        page = build_html(store, ["demo"])
    section = _section(page)
    body = section[section.index("</h2>") + len("</h2>") :]
    assert body.count("<p") == 1 and NO_SCORES in html.unescape(body)
    assert 'id="estimators"' not in body and "Pipeline check" not in body


def test_each_study_is_its_own_reference_and_a_budget_is_not_scored_against_itself(
    tmp_path, record_trial
):
    """One candidate trained at two budgets is two accuracies, never their mean; and
    budget:smoke's scores (smoke trainings) are not read against the smoke study."""
    from harness.search.budgets import BUDGETS

    smoke_settings = BUDGETS["smoke"].train_overrides()
    reference_accs = [0.30, 0.35, 0.50, 0.45, 0.60, 0.55]
    smoke_accs = [0.20, 0.28, 0.25, 0.30, 0.33, 0.31]
    with Store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        for (arch, params, *_), ref, smoke in zip(
            CANDIDATES, reference_accs, smoke_accs, strict=True
        ):
            made = record_trial(store, study="reference", arch=arch, params=params, val_acc=ref)
            record_trial(
                store, study="at-smoke", arch=arch, params=params, val_acc=smoke,
                hyperparameters=smoke_settings,
            )  # fmt: skip
            for name, value in (("params", params), ("budget:smoke", smoke)):
                store.record_estimate(
                    made.candidate_id, name, value, seconds=1.0, data_fingerprint="fp0", seed=0
                )
        page = build_html(store, ["reference", "at-smoke"])
    parser = _Cells()
    parser.feed(_section(page))
    header, *rows = parser.rows
    assert header[0] == "trained in (data)"
    keyed = {(row[0].split(" ")[0], row[1]): row for row in rows}
    assert set(keyed) == {
        ("reference", "params"),
        ("reference", "budget:smoke"),
        ("at-smoke", "params"),
    }
    expected = correlate(smoke_accs, reference_accs, top_k=TOP_K)
    assert keyed[("reference", "budget:smoke")][5] == number(expected["tau"])
