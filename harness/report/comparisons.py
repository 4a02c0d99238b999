"""The page's comparison section: sets of like-with-like runs, what each held fixed,
families (Welch, Holm) and networks pair by pair (paired t, Wilcoxon, McNemar, Holm).

Also the "pipeline check, not a finding" banner every comparison on synthetic
data carries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.report import compare, figures
from harness.report.html import Section, esc, figure_html, table
from harness.tables import number, percent, si

if TYPE_CHECKING:
    from harness.store import Store

__all__ = ["COMPARISON_SETS", "comparison_section", "is_synthetic", "synthetic_banner"]

# The page details this many comparison sets (largest first) and lists the rest.
COMPARISON_SETS = 3
_SYNTHETIC_TEXT = (
    "Pipeline check, not a finding: these runs are on the embedded synthetic data, which "
    "tests that the harness trains, records and compares correctly. No accuracy or "
    "difference here says anything about facial expression recognition."
)


def is_synthetic(trials: pd.DataFrame) -> bool:
    specs = trials["data_spec"].dropna().astype(str)
    return bool(specs.str.startswith("synthetic").any())


def synthetic_banner(trials: pd.DataFrame) -> str:
    if not len(trials) or not is_synthetic(trials):
        return ""
    return f'<p class="banner" role="note">{esc(_SYNTHETIC_TEXT)}</p>'


def _p(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.3g}"


def _held(cset: compare.ComparisonSet) -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in cset.held)
    items += (
        "<dt>varies</dt><dd>the network only: the R/I ordering (families below), and for "
        "baselines the timm model with its stem, resize, pretrained weights and head</dd>"
    )
    return f'<dl class="facts held">{items}</dl>'


def _noise_line(cset: compare.ComparisonSet) -> str:
    noise = compare.set_noise(cset)
    if noise is None:
        return (
            "<p class=note>Seed noise: no network of this set ran with more than one seed, so "
            "the size of seed-to-seed variation is unknown here (use <code>--repeats</code>).</p>"
        )
    return (
        f"<p class=note id=noise>Seed noise: over {noise.networks} network(s) with several "
        f"seeds ({noise.runs} runs), one network's test accuracy moved by up to "
        f"{percent(noise.largest_gap)} pp between seeds (pooled sd {percent(noise.pooled_sd)} "
        f"pp). Two single runs closer than {percent(noise.threshold)} pp "
        "(1.96 × √2 × sd) are within seed noise at this budget.</p>"
    )


def _family_tables(cset: compare.ComparisonSet, suffix: str) -> list[str]:
    summary = compare.family_summary(cset)
    tests = compare.family_tests(cset)
    parts = [
        table(
            [
                "group",
                "runs",
                "networks",
                "mean test acc %",
                "sd",
                "95% CI",
                "median params",
                "median FLOPs",
            ],  # fmt: skip
            [
                [
                    r.group,
                    r.n,
                    r.networks,
                    percent(r.mean),
                    percent(r.sd),
                    "not enough runs" if r.n < 2 else f"{percent(r.low)} – {percent(r.high)}",
                    si(r.params),
                    si(r.flops),
                ]
                for r in summary.itertuples()
            ],
            numeric=[1, 2, 3, 4, 6, 7],
            table_id=f"family-summary{suffix}",
        ),
        "<h4>Families: Welch's t-test (runs of different networks are not paired)</h4>",
        table(
            [
                "A",
                "B",
                "n A",
                "n B",
                "A − B (pp)",
                "95% CI (pp)",
                "t",
                "df",
                "p",
                "p (Holm)",
                "verdict",
            ],  # fmt: skip
            [
                [
                    r.a,
                    r.b,
                    r.n_a,
                    r.n_b,
                    percent(r.diff),
                    "–" if pd.isna(r.low) else f"{percent(r.low)} – {percent(r.high)}",
                    number(r.t, 2),
                    number(r.df, 1),
                    _p(r.p),
                    _p(r.p_holm),
                    r.verdict,
                ]
                for r in tests.itertuples()
            ],
            numeric=[2, 3, 4, 6, 7, 8, 9],
            table_id=f"pairwise{suffix}",
        ),
    ]
    return parts


def _network_table(store: Store, cset: compare.ComparisonSet, suffix: str) -> str:
    chosen = set(compare.compared_networks(cset))
    runs = cset.runs[cset.runs["network"].isin(chosen)]
    if "folds" in runs:  # a fold mean has no single test set to compare image by image
        runs = runs[runs["folds"].isna()]
    ids = [int(i) for i in runs["trial_id"]]
    predictions = store.trial_columns(ids, ["test_predictions", "test_targets"]) if ids else {}
    tests = compare.network_tests(cset, predictions)
    if tests.empty:
        return "<p class=note>Fewer than two networks in this set: nothing to pair.</p>"
    rows = []
    for r in tests.itertuples():
        mcnemar = (
            "–"
            if r.mcnemar_seed is None or pd.isna(r.mcnemar_seed)
            else f"{int(r.only_a)}/{int(r.only_b)} of {int(r.images)}, seed {int(r.mcnemar_seed)}"
        )
        rows.append(
            [
                r.a,
                r.b,
                r.seeds,
                percent(r.diff),
                "–" if pd.isna(r.low) else f"{percent(r.low)} – {percent(r.high)}",
                _p(r.p_t),
                _p(r.p_t_holm),
                _p(r.p_wilcoxon),
                mcnemar,
                _p(r.p_mcnemar),
                _p(r.p_mcnemar_holm),
                r.verdict,
            ]
        )
    return table(
        ["A", "B", "seeds", "A − B pp", "95% CI pp", "paired t p", "Holm", "Wilcoxon p",
         "McNemar: only A / only B right", "McNemar p", "Holm", "verdict"],
        rows,
        numeric=[2, 3, 5, 6, 7, 9, 10],
        mono=[0, 1],
        nowrap=[4, 8],
        table_id=f"paired{suffix}",
    )  # fmt: skip


def _differs(first: compare.ComparisonSet, other: compare.ComparisonSet) -> str:
    mine = dict(first.held)
    changed = [k for k, v in other.held if k != "seeds" and mine.get(k) != v]
    return ", ".join(changed) or "seeds"


def comparison_section(store: Store, trials: pd.DataFrame) -> Section:
    sets = compare.comparison_sets(trials)
    parts = [synthetic_banner(trials)]
    parts.append(
        "<p class=note>Runs are compared only within a set that holds everything but the "
        "network fixed (listed for each set). Families pool different networks, so their "
        "runs are unpaired: Welch's t-test. Two networks of one set trained with the same "
        "seeds see the same data order, so they are compared seed by seed: paired t and "
        "Wilcoxon signed-rank over the shared seeds, and McNemar's exact test over the test "
        "images of one pair of trained models. McNemar's test is about those two models: "
        "seed noise is not in it, so a tiny McNemar p with one seed says nothing about "
        "the networks; the verdict on two networks needs shared seeds (paired t). "
        "p-values are Holm-adjusted over the rows of each table (family-wise error 5%); "
        "verdicts read the adjusted p. The median "
        "parameter and FLOPs counts beside each family show whether it wins by size.</p>"
    )
    if not sets:
        parts.append("<p class=note>No complete run to compare.</p>")
        return Section("families", "4. Comparisons", "".join(parts))
    # A set of one network compares nothing: it is listed, not detailed.
    detailed = [s for s in sets if s.runs["network"].nunique() >= 2][:COMPARISON_SETS]
    rest_sets = [s for s in sets if s not in detailed]
    for index, cset in enumerate(detailed):
        suffix = "" if index == 0 else f"-{index + 1}"
        parts.append(f"<h3>Set {index + 1}: {len(cset.runs)} runs</h3>")
        parts.append(_held(cset))
        parts.append(_noise_line(cset))
        samples = compare.family_samples(cset)
        if any(samples.values()):
            summary = compare.family_summary(cset)
            parts.append(
                figure_html(figures.family_figure(samples, summary), f"fig-families{suffix}")
            )
        parts.extend(_family_tables(cset, suffix))
        parts.append(
            f"<h4>Networks, pair by pair (the {compare.NETWORKS_COMPARED} with the most seeds)</h4>"
        )
        parts.append(_network_table(store, cset, suffix))
    if rest_sets:
        first = detailed[0] if detailed else sets[0]
        rest = [
            f"<li>{len(s.runs)} run(s) of {s.runs['network'].nunique()} network(s); differs "
            f"from set 1 in: {esc(_differs(first, s))}</li>"
            for s in rest_sets
        ]
        parts.append(
            f"<p class=note>{len(rest)} more set(s), not detailed (too few networks, or "
            "smaller):</p><ul class=note>" + "".join(rest) + "</ul>"
        )
    return Section("families", "4. Comparisons", "".join(parts))
