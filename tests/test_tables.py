"""harness.tables: number formats and table rendering."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from harness.tables import (
    DASH,
    EN_DASH,
    cell,
    count,
    csv_text,
    date,
    format_rows,
    is_missing,
    number,
    percent,
    percent_pm,
    render_markdown,
    render_table,
    scaled,
    si,
    text,
)


@pytest.mark.parametrize("value", [None, math.nan, np.nan, pd.NA, pd.NaT, np.float32("nan")])
def test_missing_values(value):
    assert is_missing(value)


@pytest.mark.parametrize("value", [0, 0.0, "", "nan", [], {}, [math.nan], np.array([1, 2])])
def test_present_values_never_raise(value):
    assert not is_missing(value)


def test_number_formats():
    assert percent(0.81234) == "81.23"
    assert percent(1) == "100.00"
    assert percent(0.5, 1) == "50.0"
    assert percent_pm(0.8, 0.004) == "80.00 ± 0.40"
    assert percent_pm(0.8, None) == percent_pm(0.8, math.nan) == "80.00"
    assert number(3.14159) == "3.14" and number(2.5, 0) == "2"
    assert number(math.inf) == "inf"
    assert scaled(1_234_000, 1e6, 2) == "1.23" and scaled(456_000_000, 1e9, 3) == "0.456"
    assert si(12_345_678) == "12.3 M" and si(1.5e9) == "1.5 G" and si(2500) == "2.5 k"
    assert si(999) == "999" and si(-2e6) == "-2 M"
    assert count(3.0) == "3" and count(np.int64(7)) == "7"
    assert text("RI") == "RI" and text(3) == "3"
    assert date(pd.Timestamp("2026-01-02 03:04:59")) == "2026-01-02 03:04"
    assert date("yesterday") == "yesterday"


@pytest.mark.parametrize("fmt", [number, percent, si, count, text, date])
@pytest.mark.parametrize("value", [None, math.nan, pd.NA, pd.NaT])
def test_every_format_blanks_a_missing_value(fmt, value):
    assert fmt(value) == EN_DASH  # the page's dash
    assert fmt(value, blank=DASH) == DASH  # a terminal table's


def test_missing_mean_or_both_is_blank_and_empty_text_too():
    assert percent_pm(None, 0.1) == EN_DASH and percent_pm(math.nan, None, blank="") == ""
    assert scaled(None, 1e6, 2) == EN_DASH
    assert text("") == EN_DASH


def test_cell_keeps_missing_values_away_from_the_formatter():
    def strict(value):
        assert not is_missing(value)
        return f"<{value}>"

    assert cell(None, strict) == DASH and cell(math.nan, strict) == DASH
    assert cell(0, strict) == "<0>"


def test_format_rows_formats_each_column_and_blanks_missing_ones():
    frame = pd.DataFrame({"arch": ["RI", "IR"], "val_acc": [0.5123, None], "n": [1, 2]})
    headers, rows = format_rows(frame, [("arch", "arch", str), ("val_acc", "val %", percent)])
    assert headers == ["arch", "val %"]
    assert rows == [["RI", "51.23"], ["IR", DASH]]


def _columns(line: str, widths: list[int]) -> list[str]:
    """Cut a fixed-width line at the rule's column boundaries (two spaces apart)."""
    cells, start = [], 0
    for width in widths:
        cells.append(line[start : start + width])
        start += width + 2
    return cells


def test_table_right_aligns_numbers_and_left_aligns_text():
    headers = ["id", "arch", "val acc %", "note"]
    rows = [["1", "RRR|IIII", "51.23", "best"], ["12", "timm:resnet50", DASH, ""]]
    lines = render_table(headers, rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert all(line == line.rstrip() for line in lines)
    widths = [len(dashes) for dashes in lines[1].split("  ")]
    assert len(widths) == len(headers)
    assert all(
        w >= max(len(h), *(len(r[i]) for r in rows))
        for i, (h, w) in enumerate(zip(headers, widths, strict=True))
    )
    header = _columns(lines[0].ljust(sum(widths) + 6), widths)
    first = _columns(lines[2].ljust(sum(widths) + 6), widths)
    second = _columns(lines[3].ljust(sum(widths) + 6), widths)
    # id and val acc % (numbers, a dash for the missing one) to the right, text to the left.
    assert header[0] == "id".rjust(widths[0]) and first[0] == "1".rjust(widths[0])
    assert first[2] == "51.23".rjust(widths[2]) and second[2] == DASH.rjust(widths[2])
    assert header[1] == "arch".ljust(widths[1]) and first[1] == "RRR|IIII".ljust(widths[1])
    assert first[3] == "best".ljust(widths[3])


def test_table_alignment_can_be_given_and_an_empty_table_keeps_its_header():
    # Left-aligned text starts its column, right-aligned text ends it (at the rule's end).
    lines = render_table(["n", "x"], [["1", "2"]], right=[False, True]).splitlines()
    assert lines[2].startswith("1 ") and lines[2].endswith(" 2")
    assert len(lines[2]) == len(lines[1])
    lines = render_table(["name", "id"], [["abc", "7"]], right=[True, False]).splitlines()
    first, _ = lines[1].split("  ")
    assert lines[2][: len(first)] == "abc".rjust(len(first))
    assert lines[2][len(first) + 2 :] == "7"
    empty = render_table(["id", "arch"], []).splitlines()
    assert empty[0].split() == ["id", "arch"] and set(empty[1]) == {"-", " "}
    assert len(empty) == 2


def test_numbers_keep_their_text():
    # Cells are text already: "12.00" must not become "12", nor "007" 7.
    out = render_table(["a", "b"], [["12.00", "007"]]) + render_markdown(["a"], [["1.50"]])
    assert "12.00" in out and "007" in out and "1.50" in out


def _read_markdown(markdown: str) -> tuple[pd.DataFrame, list[str]]:
    lines = markdown.splitlines()
    split = r"(?<!\\)\|"  # an escaped pipe stays inside its cell
    frame = pd.read_csv(
        io.StringIO("\n".join([lines[0], *lines[2:]])),
        sep=split,
        engine="python",
        dtype=str,
        keep_default_na=False,
    )
    frame = frame.iloc[:, 1:-1]  # the empty cells outside the outer pipes
    frame.columns = [c.strip() for c in frame.columns]
    frame = frame.apply(lambda column: column.str.strip().str.replace("\\|", "|"))
    align = [part.strip() for part in lines[1].strip("|").split("|")]
    return frame, align


def test_markdown_round_trips_through_pandas():
    headers = ["id", "arch", "test acc %"]
    rows = [["1", "RRR|IIII", "45.67"], ["2", "(IR)", DASH], ["10", "timm:resnet50", "55.00"]]
    frame, align = _read_markdown(render_markdown(headers, rows))
    assert list(frame.columns) == headers
    assert frame.values.tolist() == rows
    assert align[0].endswith(":") and align[2].endswith(":")  # numbers right
    assert not align[1].endswith(":")  # text left


def test_markdown_escapes_a_pipe_in_a_header_too():
    out = render_markdown(["a|b"], [["1"]])
    assert "a\\|b" in out.splitlines()[0]


def test_csv_round_trips_lists_dicts_and_gaps():
    frame = pd.DataFrame(
        {
            "arch": ["RRR|IIII", "timm:resnet50"],
            "hyperparameters": [{"lr": 1e-4, "batch": 64}, None],
            "shape": [[1, 48, 48], [3, 224, 224]],
            "resize": pd.Series([None, 96], dtype=object),
            "val_acc": [0.5123, math.nan],
        }
    )
    written = csv_text(frame)
    back = pd.read_csv(io.StringIO(written))
    assert list(back["arch"]) == ["RRR|IIII", "timm:resnet50"]
    assert json.loads(back.loc[0, "hyperparameters"]) == {"lr": 1e-4, "batch": 64}
    assert pd.isna(back.loc[1, "hyperparameters"])
    assert [json.loads(s) for s in back["shape"]] == [[1, 48, 48], [3, 224, 224]]
    assert back.loc[0, "val_acc"] == pytest.approx(0.5123) and pd.isna(back.loc[1, "val_acc"])
    # An object column of ints with a gap keeps its ints (not 96.0).
    assert written.splitlines()[2].split(",")[-2] == "96"
    assert frame["hyperparameters"][0] == {"lr": 1e-4, "batch": 64}  # the input is untouched


def test_tables_import_no_torch_nor_pandas():
    code = (
        "import sys, harness.tables, harness.ranking, harness.search.members, "
        "harness.search.leaderboard; "
        "print(sorted(m for m in ('torch', 'pandas', 'tabulate') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
