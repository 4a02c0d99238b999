"""`harness bench`: parameters, FLOPs and latency tables, no training."""

from __future__ import annotations

import csv
import io
import json

import pytest
import timm

from harness.bench import bench_set
from harness.cli import main
from harness.errors import ConfigError
from harness.grammar import resolve
from harness.measure import count_params
from harness.models import Skeleton
from harness.search.members import space_set

# One thread: small models on a shared CPU run far faster without OpenMP barriers.
FAST = ["--threads", "1"]


def bench(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["bench", *args, *FAST])
    out, err = capsys.readouterr()
    return status, out, err


def test_resnet50_at_224_shows_fvcore_flops_and_timm_params(capsys):
    status, out, _ = bench(
        capsys, "timm:resnet50", "--input", "3x224x224", "--classes", "1000", "--no-latency"
    )
    assert status == 0
    timm_params = count_params(timm.create_model("resnet50", num_classes=1000))
    assert timm_params == 25_557_032
    row = next(line for line in out.splitlines() if line.startswith("timm:resnet50"))
    assert "25,557,032" in row.split()
    assert "4.112" in row.split()  # fvcore's 4.11 GFLOPs (multiply-add = 1)
    assert "stem" in out and " timm " in row  # 224 px: timm's own stem, unchanged


def test_paper_space_lists_the_orderings_and_both_stems_of_each_baseline(capsys):
    status, out, _ = bench(capsys, "--space", "paper", "--no-latency", "--format", "csv")
    assert status == 0
    records = list(csv.DictReader(io.StringIO(out)))
    depths = (3, 4, 6, 3)
    baselines = ["timm:resnet50", "timm:mobilenetv1_100", "timm:mobilenetv2_100"]
    assert [r["arch"] for r in records] == [
        resolve("alternated", depths).canonical,
        resolve("RI", depths).canonical,
        resolve("IR", depths).canonical,
        *baselines,
        *baselines,
    ]
    assert [r["family"] for r in records] == ["alternated", "RI", "IR", *["baseline"] * 6]
    # The paper's baselines with timm's stems, then the small-input variants, all
    # under the paper head: rows that differ only in the body.
    assert [r["stem"] for r in records[3:]] == ["timm"] * 3 + ["small"] * 3
    assert {r["head"] for r in records} == {"paper"}
    for stock, small in zip(records[3:6], records[6:], strict=True):
        assert stock["params"] == small["params"]
        assert 8 < int(small["flops"]) / int(stock["flops"]) < 20
    assert all(int(r["params"]) > 1e6 and int(r["flops"]) > 1e7 for r in records)
    # The space's MobileNetV2 expansion (6) makes IR's I blocks heavier than at the default 2.
    default_ir = bench_set(["IR"], None)
    assert default_ir.skeleton == {}
    status, out, _ = bench(capsys, "IR", "--no-latency", "--format", "json")
    default_flops = json.loads(out)["results"][0]["flops"]
    assert int(records[2]["flops"]) > default_flops


def test_latency_per_batch_in_every_format(capsys):
    args = ["RR II", "--depths", "2,2", "--widths", "16,32", "--input", "1x16x16"]
    args += ["--batch", "1,4", "--repeats", "3", "--max-seconds", "5"]
    status, out, _ = bench(capsys, *args, "--format", "json")
    assert status == 0
    report = json.loads(out)
    (row,) = report["results"]
    assert row["arch"] == "RR|II" and row["family"] == "RI"
    assert [lat["batch"] for lat in row["latency"]] == [1, 4]
    for lat in row["latency"]:
        assert lat["repeats"] == 3
        assert 0 < lat["median_ms"] <= lat["p90_ms"] <= lat["max_ms"]
        assert lat["images_per_s"] == pytest.approx(lat["batch"] / lat["median_ms"] * 1000)
    assert report["environment"]["threads"] == 1

    status, out, _ = bench(capsys, *args)
    lines = out.splitlines()
    assert "inference latency on cpu" in lines[0]
    header = lines[1].split()
    assert header[:6] == ["arch", "family", "stem", "head", "params", "GFLOPs"]
    assert "median" in header and "p90" in header and "images/s" in header
    assert lines[3].startswith("RR|II") and lines[4].split()[0] == "4"  # batch 4, same model

    status, out, _ = bench(capsys, *args, "--format", "md")
    assert [c.strip() for c in out.splitlines()[0].strip("|").split("|")][:2] == ["arch", "family"]
    assert len(out.splitlines()) == 4  # header, rule, one line per batch size

    status, out, _ = bench(capsys, *args, "--format", "csv")
    records = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["batch"]) for r in records] == [1, 4]


def test_one_architecture_spelled_twice_is_measured_once(capsys):
    status, out, _ = bench(capsys, "RI", "RRR|RRRR|RIIIII|III", "--no-latency", "--format", "json")
    assert status == 0
    assert [r["input"] for r in json.loads(out)["results"]] == ["RI"]


def test_baseline_flags_and_options_build_what_training_builds(capsys):
    from harness.candidate import build_candidate
    from harness.measure import count_flops

    name = "timm:mobilenetv2_050"
    args = [name, f"{name}?stem=small", "--no-latency", "--format", "json"]
    status, out, _ = bench(capsys, *args)
    assert status == 0
    stock, small = json.loads(out)["results"]  # one name, two networks: both measured
    assert (stock["stem"], small["stem"]) == ("timm", "small")
    for row, stem in ((stock, "timm"), (small, "small")):
        built = build_candidate(name, image_shape=(1, 48, 48), num_classes=7, baseline_stem=stem)
        assert row["flops"] == count_flops(built.model, built.input_shape)
    # --baseline-stem changes the row that names no stem (both are then one
    # network, measured once); --resize upsamples before the network.
    status, out, _ = bench(capsys, *args, "--baseline-stem", "small", "--resize", "64")
    ((row,),) = [json.loads(out)["results"]]
    assert (row["input"], row["stem"], row["resize"]) == (name, "small", 64)
    assert row["flops"] > small["flops"] * 1.5  # 64x64 is 1.8x the pixels of 48x48


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["RX"], "unknown block 'X'"),
        (["timm:resnet5"], "did you mean timm:resnet50"),
        (["--space", "no_such_space"], "no_such_space"),
        ([], "name architectures to bench"),
        (["RI", "--batch", "0"], "--batch"),
        (["RI", "--input", "48x48"], "CxHxW"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    status, out, err = bench(capsys, *args, "--no-latency")
    assert status == 2
    assert out == ""
    assert err.startswith("harness: error:") and message in err
    assert "Traceback" not in err


def test_an_unknown_architecture_fails_before_any_measurement(capsys, monkeypatch):
    import harness.measure

    def no_flops(*args, **kwargs):
        raise AssertionError("measured before every architecture was checked")

    monkeypatch.setattr(harness.measure, "count_flops", no_flops)
    status, _, err = bench(capsys, "RI", "timm:resnet5", "--no-latency")
    assert status == 2 and "resnet5" in err


def test_space_set_merges_the_protocol_skeleton_and_needs_architectures(tmp_path):
    paper = space_set("paper")
    assert paper.archs[:3] == ("alternated", "RI", "IR")
    assert "timm:resnet50?stem=small" in paper.archs
    # The paper protocol's head fields, then the space's own skeleton on top.
    assert paper.skeleton["output"] == "sigmoid" and paper.skeleton["depths"] == [3, 4, 6, 3]
    assert Skeleton.from_dict(paper.skeleton).block_params["I"]["exp_ratio"] == 6
    open_space = tmp_path / "open.toml"
    open_space.write_text(
        'protocol = "fast"\n[skeleton]\ndepths = [1, 1]\nwidths = [8, 16]\n'
        '[architecture]\npositions = ["R", "I"]\n'
    )
    with pytest.raises(ConfigError, match="lists no architectures"):
        space_set(str(open_space))
