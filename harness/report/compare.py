"""Comparison sets: which complete runs may be compared with which, and the tests between them.

Two runs are compared only when everything but the network is the same: one
study, one protocol, one data spec (CK+ folds averaged first) and label mode,
the same training settings, and for the R/I networks one skeleton (stem,
widths, head, block parameters, input). Baselines are keyed by name, stem,
resize, pretrained weights and head, and join every set of R/I runs trained
under their setting. Each set says on the page what it held fixed.

Pure pandas on the frame `gather` builds (it has a `config` column), so every
rule here is testable without a page.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import pandas as pd

from harness.stats import MIN_RUNS, holm, mcnemar, mean_ci, paired, seed_noise, welch

__all__ = [
    "FAMILY_ORDER",
    "NETWORKS_COMPARED",
    "ComparisonSet",
    "comparison_sets",
    "family_samples",
    "family_summary",
    "family_tests",
    "compared_networks",
    "network_label",
    "network_tests",
    "set_noise",
    "strip_fold",
]

FAMILY_ORDER = ("alternated", "RI", "IR", "other")
# The paper's questions first among the family pairs.
_FIRST_PAIRS = (("RI", "alternated"), ("RI", "IR"), ("alternated", "IR"))
# The networks of a set compared pair by pair (the most seeds first): 6 gives 15 pairs.
NETWORKS_COMPARED = 6
ALPHA = 0.05

# Config fields that are not part of the training setting: the network itself,
# where and how fast it ran, and the seed (the one thing runs of a network vary).
_NOT_SETTING = frozenset(
    {
        "arch", "arch_requested", "seed", "device", "threads", "compile", "description",
        "eval_batch_size", "baseline_stem", "resize", "pretrained", "skeleton", "input_shape",
        "data", "head",
    }
)  # fmt: skip
_SHOWN_SETTING = (
    "epochs", "batch_size", "optimizer", "lr", "beta1", "weight_decay", "schedule",
    "label_smoothing", "crop_padding", "crop_padding_mode", "flip", "rotate_deg", "max_batches",
    "patience",
)  # fmt: skip


@dataclass
class ComparisonSet:
    key: str
    held: list[tuple[str, str]]  # what was held fixed, as (what, value) for the page
    runs: pd.DataFrame  # one row per complete run: network, group, family, seed, accuracies

    @property
    def title(self) -> str:
        values = dict(self.held)
        return f"{values.get('study', '?')}: {values.get('data', '?')}, {values.get('protocol')}"


def strip_fold(spec: object) -> str:
    """The data spec without its `fold=i` (CK+ folds of one run are one comparison)."""
    text = str(spec or "")
    if "?" not in text:
        return text
    base, _, query = text.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith("fold=")]
    return base + ("?" + "&".join(kept) if kept else "")


def _config(row: dict[str, Any]) -> dict[str, Any]:
    config = row.get("config")
    return config if isinstance(config, dict) else {}


def _skeleton(config: dict[str, Any]) -> dict[str, Any]:
    skeleton = config.get("skeleton")
    return skeleton if isinstance(skeleton, dict) else {}


def _setting(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(config.items()) if k not in _NOT_SETTING}


def network_label(row: dict[str, Any]) -> str:
    """The network a run trained: its canonical arch; a baseline with how it took the input."""
    if row.get("kind") != "baseline":
        return str(row["arch"])
    config = _config(row)
    parts = [str(config.get("baseline_stem") or "?") + " stem"]
    if config.get("resize"):
        parts.append(f"resized to {int(config['resize'])} px")
    if config.get("pretrained"):
        parts.append("pretrained")
    head = _skeleton(config).get("head")
    if head and head != "linear":
        parts.append(f"{head} head")
    return f"{row['arch']} ({', '.join(parts)})"


def _describe_skeleton(skeleton: dict[str, Any]) -> str:
    if not skeleton:
        return "–"
    parts = []
    shape = skeleton.get("input_shape")
    if shape:
        parts.append("input " + "x".join(str(s) for s in shape))
    if skeleton.get("num_classes"):
        parts.append(f"{skeleton['num_classes']} classes")
    if skeleton.get("depths"):
        parts.append("depths " + "/".join(str(d) for d in skeleton["depths"]))
    if skeleton.get("widths"):
        widths = "/".join(str(w) for w in skeleton["widths"])
        parts.append(f"widths {widths} × {skeleton.get('width_mult', 1.0):g}")
    for key in ("stem", "head", "output"):
        if skeleton.get(key):
            parts.append(f"{key} {skeleton[key]}")
    for letter, values in sorted((skeleton.get("block_params") or {}).items()):
        inner = ", ".join(f"{k} {v}" for k, v in sorted(values.items()))
        parts.append(f"{letter} blocks: {inner}")
    return ", ".join(parts)


def _describe_setting(setting: dict[str, Any]) -> str:
    shown = [
        f"{k.replace('_', ' ')} {setting[k]}" for k in _SHOWN_SETTING if setting.get(k) is not None
    ]
    rest = len([k for k in setting if k not in _SHOWN_SETTING and k != "protocol"])
    if rest:
        shown.append(f"and {rest} more settings, identical")
    return ", ".join(shown) or "–"


def _seeds(runs: pd.DataFrame) -> str:
    seeds = sorted({int(s) for s in runs["seed"] if not pd.isna(s)})
    return ", ".join(map(str, seeds)) or "–"


def comparison_sets(trials: pd.DataFrame) -> list[ComparisonSet]:
    """The complete runs split into sets of like with like, the largest first."""
    done = trials[(trials["status"] == "complete") & trials["test_acc"].notna()]
    if done.empty:
        return []
    records = []
    for row in done.sort_values("trial_id").to_dict(orient="records"):
        config = _config(row)
        setting = _setting(config)
        base = {
            "study": row["study"],
            "protocol": row.get("protocol"),
            "data": strip_fold(row.get("data_spec")),
            "labels": row.get("label_mode"),
            "setting": setting,
        }
        skeleton = _skeleton(config) if row["kind"] != "baseline" else None
        records.append(
            {
                **row,
                "network": network_label(row),
                "_base": json.dumps(base, sort_keys=True, default=str),
                "_base_fields": base,
                "_skeleton": None if skeleton is None else json.dumps(skeleton, sort_keys=True),
                "_skeleton_dict": skeleton,
            }
        )
    frame = pd.DataFrame(records)
    frame["group"] = [r["network"] if r["kind"] == "baseline" else r["family"] for r in records]
    sets = []
    for base_key, part in frame.groupby("_base", sort=False):
        baselines = part[part["kind"] == "baseline"]
        networks = part[part["kind"] != "baseline"]
        skeletons = list(dict.fromkeys(networks["_skeleton"])) or [None]
        for skeleton_key in skeletons:
            mine = networks[networks["_skeleton"] == skeleton_key] if skeleton_key else networks
            runs = pd.concat([mine, baselines]).sort_values("trial_id")
            fields = runs["_base_fields"].iloc[0]
            skeleton = mine["_skeleton_dict"].iloc[0] if len(mine) else None
            held = [
                ("study", str(fields["study"])),
                ("protocol", str(fields["protocol"])),
                ("data", fields["data"] or "–"),
                ("labels", str(fields["labels"] or "–")),
                ("training", _describe_setting(fields["setting"])),
                ("R/I skeleton", _describe_skeleton(skeleton) if skeleton else "– (no R/I runs)"),
                ("seeds", _seeds(runs)),
            ]
            key = f"{base_key}|{skeleton_key}"
            sets.append(ComparisonSet(key=key, held=held, runs=runs.reset_index(drop=True)))
    sets.sort(key=lambda s: (-len(s.runs), int(s.runs["trial_id"].min())))
    return sets


def family_samples(cset: ComparisonSet) -> dict[str, list[float]]:
    """Test accuracy of every run of the set: the four families, then each baseline."""
    samples: dict[str, list[float]] = {name: [] for name in FAMILY_ORDER}
    for row in cset.runs.itertuples():
        samples.setdefault(row.group, []).append(float(row.test_acc))
    return samples


def family_summary(cset: ComparisonSet) -> pd.DataFrame:
    """Per group: runs, networks, mean test accuracy with its t interval, median size."""
    samples = family_samples(cset)
    rows = []
    for name, values in samples.items():
        ci = mean_ci(values)
        mine = cset.runs[cset.runs["group"] == name]
        rows.append(
            {
                "group": name,
                "n": ci.n,
                "networks": int(mine["network"].nunique()),
                "mean": ci.mean,
                "sd": ci.sd,
                "low": ci.low,
                "high": ci.high,
                "params": float(mine["params"].median()) if len(mine) else math.nan,
                "flops": float(mine["flops"].median()) if len(mine) else math.nan,
            }
        )
    columns = ["group", "n", "networks", "mean", "sd", "low", "high", "params", "flops"]
    return pd.DataFrame(rows, columns=columns)


def _verdict(a: str, b: str, diff: float, p: float) -> str:
    if math.isnan(p):
        return "cannot test"
    if p < ALPHA:
        return f"{a} higher" if diff > 0 else f"{b} higher"
    return "no clear difference"


def family_tests(cset: ComparisonSet) -> pd.DataFrame:
    """Welch's t-test for each pair of groups (runs of different networks are not
    paired), with Holm's adjustment over the rows; the verdict reads the adjusted p."""
    samples = family_samples(cset)
    names = list(samples)
    pairs = [p for p in _FIRST_PAIRS if samples.get(p[0]) and samples.get(p[1])]
    for a, b in combinations(names, 2):
        if (a, b) in pairs or (b, a) in pairs or not (samples[a] and samples[b]):
            continue
        pairs.append((a, b))
    rows = []
    for a, b in pairs:
        result = welch(samples[a], samples[b])
        n_a, n_b = len(samples[a]), len(samples[b])
        row: dict[str, Any] = {"a": a, "b": b, "n_a": n_a, "n_b": n_b}
        if result is None:
            diff = mean_ci(samples[a]).mean - mean_ci(samples[b]).mean
            row.update(diff=diff, low=math.nan, high=math.nan, t=math.nan, df=math.nan, p=math.nan)
            row["note"] = (
                f"not enough runs (need {MIN_RUNS} per group)"
                if min(n_a, n_b) < MIN_RUNS
                else "no spread in either group: cannot test"
            )
        else:
            row.update(diff=result.diff, low=result.low, high=result.high, t=result.t,
                       df=result.df, p=result.p, note="")  # fmt: skip
        rows.append(row)
    frame = pd.DataFrame(
        rows, columns=["a", "b", "n_a", "n_b", "diff", "low", "high", "t", "df", "p", "note"]
    )
    frame["p_holm"] = holm(list(frame["p"])) if len(frame) else []
    frame["verdict"] = [r.note or _verdict(r.a, r.b, r.diff, r.p_holm) for r in frame.itertuples()]
    return frame


def compared_networks(cset: ComparisonSet) -> list[str]:
    """The networks compared pair by pair: most seeds first, then mean validation accuracy."""
    stats = (
        cset.runs.groupby("network", sort=False)
        .agg(seeds=("seed", "nunique"), val=("val_acc", "mean"), first=("trial_id", "min"))
        .reset_index()
        .sort_values(["seeds", "val", "first"], ascending=[False, False, True])
    )
    return list(stats["network"].head(NETWORKS_COMPARED))


def network_tests(
    cset: ComparisonSet, predictions: dict[int, dict[str, Any]] | None = None
) -> pd.DataFrame:
    """Each pair of the set's leading networks over the seeds they share: paired t and
    Wilcoxon on the per-seed test accuracies, and McNemar's test on the test images of
    the first shared seed's two models; Holm's adjustment over the rows of each test.

    `predictions` maps trial id -> {"test_predictions": [...], "test_targets": [...]}.
    """
    predictions = predictions or {}
    by_network = {
        name: part.drop_duplicates("seed").set_index("seed")
        for name, part in cset.runs.groupby("network", sort=False)
    }
    rows = []
    for a, b in combinations(compared_networks(cset), 2):
        runs_a, runs_b = by_network[a], by_network[b]
        shared = sorted(set(runs_a.index) & set(runs_b.index))
        row: dict[str, Any] = {"a": a, "b": b, "seeds": len(shared)}
        acc_a = [float(runs_a.loc[s, "test_acc"]) for s in shared]
        acc_b = [float(runs_b.loc[s, "test_acc"]) for s in shared]
        row["diff"] = (sum(acc_a) - sum(acc_b)) / len(shared) if shared else math.nan
        result = paired(acc_a, acc_b) if len(shared) >= MIN_RUNS else None
        row.update(
            low=result.low if result else math.nan,
            high=result.high if result else math.nan,
            p_t=result.p if result else math.nan,
            p_wilcoxon=result.p_wilcoxon if result else math.nan,
        )
        row.update(mcnemar_seed=None, only_a=None, only_b=None, images=None, p_mcnemar=math.nan)
        for seed in shared:
            first = predictions.get(int(runs_a.loc[seed, "trial_id"])) or {}
            second = predictions.get(int(runs_b.loc[seed, "trial_id"])) or {}
            targets = first.get("test_targets")
            if not targets or targets != second.get("test_targets"):
                continue
            test = mcnemar(first["test_predictions"], second["test_predictions"], targets)
            row.update(mcnemar_seed=int(seed), only_a=test.only_a, only_b=test.only_b,
                       images=test.n, p_mcnemar=test.p)  # fmt: skip
            break
        rows.append(row)
    columns = ["a", "b", "seeds", "diff", "low", "high", "p_t", "p_wilcoxon", "mcnemar_seed",
               "only_a", "only_b", "images", "p_mcnemar"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    frame["p_t_holm"] = holm(list(frame["p_t"])) if len(frame) else []
    frame["p_mcnemar_holm"] = holm(list(frame["p_mcnemar"])) if len(frame) else []
    verdicts = []
    for r in frame.itertuples():
        if r.seeds == 0:
            verdicts.append("no shared seed")
        elif not math.isnan(r.p_t_holm):
            verdicts.append(_verdict(r.a, r.b, r.diff, r.p_t_holm))
        elif r.seeds >= MIN_RUNS:
            verdicts.append("the same difference on every seed: paired t undefined (see Wilcoxon)")
        elif not math.isnan(r.p_mcnemar_holm):
            # McNemar tests two trained models, not two networks: seed noise is not in it.
            verdicts.append(
                "one seed: these models differ (networks untested)"
                if r.p_mcnemar_holm < ALPHA
                else "one seed: no clear difference between these models"
            )
        else:
            verdicts.append("not enough shared seeds")
    frame["verdict"] = verdicts
    return frame


def set_noise(cset: ComparisonSet) -> Any:
    """Seed noise of the set's networks that ran with several seeds (None if none did)."""
    groups = [list(part["test_acc"]) for _, part in cset.runs.groupby("network", sort=False)]
    return seed_noise(groups)
