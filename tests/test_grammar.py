"""The block-sequence grammar: examples, the stage cut, named orderings, errors, properties."""

from __future__ import annotations

import string
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import GrammarError, HarnessError
from harness.grammar import (
    DEFAULT_LETTERS,
    MAX_BLOCKS,
    NAMED_ORDERINGS,
    Arch,
    Genotype,
    canonicalise,
    cut,
    expand_named,
    family,
    format_arch,
    parse,
    resolve,
)

DEPTHS = (3, 4, 6, 3)


# --- examples -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stages", "explicit"),
    [
        ("(IR)*8", ("IR" * 8,), False),
        ("R*8 I*8", ("R" * 8 + "I" * 8,), False),
        ("I*8 R*8", ("I" * 8 + "R" * 8,), False),
        ("RRR|IIII|RRRRRR|III", ("RRR", "IIII", "RRRRRR", "III"), True),
        ("((RI)*2 R)*2", ("RIRIRRIRIR",), False),
        ("R*3 I*2|I*4", ("RRRII", "IIII"), True),
        ("R", ("R",), False),
        ("(R)*1", ("R",), False),
        ("R*03", ("RRR",), False),
        ("I R", ("IR",), False),
    ],
)
def test_parse_examples(text: str, stages: tuple[str, ...], explicit: bool) -> None:
    assert parse(text) == Arch(stages, explicit)


@pytest.mark.parametrize(
    "text",
    [
        "R*8I*8",
        "R*8 I*8",
        "  R * 8   I *8 ",
        "R\t*\n8 I*8",
        "(R)*8 (I)*8",
        "((R*2)*2)*2 I*8",
        "R*4 R*4 I*8",
    ],
)
def test_whitespace_and_spelling_variants_are_equal(text: str) -> None:
    assert parse(text) == parse("R*8 I*8")
    assert canonicalise(text, DEPTHS) == canonicalise("RRRRRRRRIIIIIIII", DEPTHS)


def test_known_letters_come_from_the_caller() -> None:
    assert parse("R*2 B", known=("B", "I", "R")).flat == "RRB"
    assert parse("B|I", known={"B": None, "I": None}.keys()).stages == ("B", "I")
    with pytest.raises(GrammarError, match=r"known: B, I, R\)"):
        parse("X", known=["R", "I", "B"])
    with pytest.raises(GrammarError, match="single upper-case letters"):
        parse("R", known=("R", "ir"))


def test_default_letters_are_the_built_in_blocks() -> None:
    # The grammar may not import torch, so it names the built-in blocks itself; the block
    # registry is the truth (letters that tests register come from other modules).
    from harness.blocks import registered_blocks

    built_in = {
        letter
        for letter, spec in registered_blocks().items()
        if spec.factory.__module__ == "harness.blocks"
    }
    assert set(DEFAULT_LETTERS) == built_in
    for letter in DEFAULT_LETTERS:
        assert parse(letter).flat == letter
    other = next(c for c in string.ascii_uppercase if c not in DEFAULT_LETTERS)
    with pytest.raises(GrammarError, match=rf"known: {', '.join(sorted(DEFAULT_LETTERS))}\)"):
        parse(other)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="IR", min_size=1, max_size=40))
def test_every_family_is_a_named_ordering_or_other(flat: str) -> None:
    # The reverse (each named ordering is its own family) is test_family_of_named_orderings.
    assert family(flat) in (*NAMED_ORDERINGS, "other")


# --- the stage cut --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "sizes"),
    [(16, (3, 4, 6, 3)), (8, (2, 2, 2, 2)), (4, (1, 1, 1, 1)), (5, (1, 1, 2, 1)), (3, (1, 1, 1))],
)
def test_cut_table(n: int, sizes: tuple[int, ...]) -> None:
    assert tuple(map(len, cut("R" * n, DEPTHS))) == sizes


@pytest.mark.parametrize("n", range(1, 17))
def test_cut_every_length_keeps_blocks_and_fills_stages(n: int) -> None:
    flat = ("IRRIIRIRRRIIRIRI" * 2)[:n]
    stages = cut(flat, DEPTHS)
    assert "".join(stages) == flat
    assert all(stages)
    assert len(stages) == min(n, 4)


def test_cut_scales_with_the_skeleton() -> None:
    assert tuple(map(len, cut("R" * 32, DEPTHS))) == (6, 8, 12, 6)
    assert tuple(map(len, cut("R" * 12, (2, 2, 2)))) == (4, 4, 4)
    assert cut("RI", (5,)) == ("RI",)


@pytest.mark.parametrize("depths", [(), (3, 0), (3, -1), (2.0, 3), (True, 2)])
def test_cut_rejects_bad_depths(depths: tuple) -> None:
    with pytest.raises(GrammarError, match="depths"):
        cut("RR", depths)


def test_cut_rejects_empty() -> None:
    with pytest.raises(GrammarError, match="empty"):
        cut("", DEPTHS)


def test_canonicalise_keeps_explicit_stages() -> None:
    assert canonicalise("R|I*3", DEPTHS).stages == ("R", "III")
    assert canonicalise("RRR|IIII|RRRRRR|III", DEPTHS).canonical == "RRR|IIII|RRRRRR|III"
    assert canonicalise("R*8 I*8", DEPTHS).canonical == "RRR|RRRR|RIIIII|III"
    assert canonicalise(parse("(IR)*2"), DEPTHS).canonical == "I|R|I|R"


def test_canonicalise_too_many_stages() -> None:
    with pytest.raises(GrammarError, match=r"5 stages but the skeleton has 4"):
        canonicalise("R|R|R|R|R", DEPTHS)
    with pytest.raises(GrammarError, match=r"3 stages but the skeleton has 2"):
        canonicalise(parse("R|I|R"), (2, 2))


def test_canonicalise_checks_letters_of_a_parsed_arch() -> None:
    with pytest.raises(GrammarError, match=r"unknown block 'B'.*known: I, R"):
        canonicalise(Arch(("RB",), explicit=False), DEPTHS)


# --- genotype -------------------------------------------------------------------------------


def test_genotype_properties() -> None:
    g = Genotype(("RRR", "RRRR", "IIIIII", "III"))
    assert g.canonical == str(g) == "RRR|RRRR|IIIIII|III"
    assert g.flat == "R" * 7 + "I" * 9
    assert g.n_blocks == 16
    assert list(g.counts().items()) == [("I", 9), ("R", 7)]
    assert Genotype.from_canonical(g.canonical) == g
    assert hash(g) == hash(Genotype.from_canonical("RRR|RRRR|IIIIII|III"))
    assert Genotype(["R", "I"]).stages == ("R", "I")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "column"),
    [("", None), ("RR||II", 4), ("|R", 1), ("R|", 3), ("R*2", 2), ("R I", 2), ("Rr", 2)],
)
def test_from_canonical_is_strict(text: str, column: int | None) -> None:
    with pytest.raises(GrammarError) as info:
        Genotype.from_canonical(text)
    if column is not None:
        assert f"at column {column} " in str(info.value)


@pytest.mark.parametrize("stages", [(), ("",), ("R", "i"), ("R*2",)])
def test_genotype_rejects_invalid_stages(stages: tuple[str, ...]) -> None:
    with pytest.raises(GrammarError):
        Genotype(stages)


@pytest.mark.parametrize(("stages", "explicit"), [(("R", "I"), False), (("RI",), True)])
def test_arch_explicit_matches_stage_count(stages: tuple[str, ...], explicit: bool) -> None:
    with pytest.raises(GrammarError, match="explicit"):
        Arch(stages, explicit)


# --- formatting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "text"),
    [
        (Arch(("RRRII", "IIII"), True), "R*3 I*2|I*4"),
        (Arch(("IR" * 8,), False), "(I R)*8"),
        (Arch(("RRIRRI",), False), "(R*2 I)*2"),
        (Arch(("R",), False), "R"),
        (Arch(("RI",), False), "R I"),
        (Genotype(("RRR", "RRRR", "IIIIII", "III")), "R*3|R*4|I*6|I*3"),
    ],
)
def test_format_arch(arch: Arch | Genotype, text: str) -> None:
    assert format_arch(arch) == text


# --- named orderings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "grammar"),
    [("RI", "R*8 I*8"), ("IR", "I*8 R*8"), ("alternated", "(IR)*8"), ("Alternated", "(IR)*8")],
)
def test_named_orderings_match_the_paper(name: str, grammar: str) -> None:
    assert resolve(name, DEPTHS) == canonicalise(grammar, DEPTHS)
    assert resolve(f"  {name}  ", DEPTHS) == canonicalise(grammar, DEPTHS)


@pytest.mark.parametrize(
    ("text", "flat"),
    [
        ("RI:5", "RRRII"),
        ("IR:5", "IIIRR"),
        ("alternated:5", "IRIRI"),
        ("ALTERNATED:4", "IRIR"),
        ("RI:1", "R"),
        ("IR : 2", "IR"),
        ("RI:32", "R" * 16 + "I" * 16),
    ],
)
def test_named_orderings_with_block_count(text: str, flat: str) -> None:
    assert resolve(text, DEPTHS) == Genotype(cut(flat, DEPTHS))


@pytest.mark.parametrize("name", NAMED_ORDERINGS)
@pytest.mark.parametrize("n", [1, 2, 7, 16])
def test_expand_named_length_and_halves(name: str, n: int) -> None:
    flat = expand_named(name, n)
    assert len(flat) == n
    assert flat.count(name[0] if name != "alternated" else "I") == (n + 1) // 2


@pytest.mark.parametrize("text", ["R I", "(RI)", "R\tI", "(IR)", "I R"])
def test_spaced_or_parenthesised_two_letters_are_literal(text: str) -> None:
    assert resolve(text, DEPTHS).n_blocks == 2
    assert resolve(text, DEPTHS) == canonicalise(text, DEPTHS)


def test_names_are_not_grammar() -> None:
    assert canonicalise("RI", DEPTHS).canonical == "R|I"  # parse never reads names
    with pytest.raises(GrammarError, match=r"unknown block 'a' at column 1.*upper case"):
        parse("alternated")
    with pytest.raises(GrammarError, match=r"unknown block 'r' at column 1"):
        resolve("ri", DEPTHS)  # RI and IR are matched exactly


@pytest.mark.parametrize("text", ["RI:0", "RI:x", "IR:", "alternated:-3", "RI:1.5", "RI:00"])
def test_bad_block_count(text: str) -> None:
    with pytest.raises(
        GrammarError, match=r"bad block count .* at column \d+ .*N a whole number >= 1"
    ):
        resolve(text, DEPTHS)


def test_named_ordering_needs_r_and_i() -> None:
    with pytest.raises(GrammarError, match=r"needs blocks I and R \(known: B, R\)"):
        resolve("RI", DEPTHS, known=("R", "B"))


def test_expand_named_rejects_bad_input() -> None:
    with pytest.raises(GrammarError, match="unknown named ordering"):
        expand_named("RIR", 4)
    with pytest.raises(GrammarError, match=">= 1"):
        expand_named("RI", 0)
    with pytest.raises(GrammarError, match=str(MAX_BLOCKS)):
        expand_named("RI", MAX_BLOCKS + 1)
    with pytest.raises(GrammarError, match=str(MAX_BLOCKS)):
        resolve(f"RI:{10**30}", DEPTHS)


# --- family ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMED_ORDERINGS)
@pytest.mark.parametrize("n", [3, 4, 9, 16, 32])
def test_family_of_named_orderings(name: str, n: int) -> None:
    assert family(resolve(f"{name}:{n}", DEPTHS)) == name


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("RI", "alternated"),  # two blocks alternate; that check comes first
        ("IR", "alternated"),
        ("RIRIR", "alternated"),
        ("R|I|R", "alternated"),
        ("RRI", "RI"),
        ("IRR", "IR"),
        ("R", "other"),
        ("RRRR", "other"),
        ("IIII", "other"),
        ("RIIR", "other"),
        ("RRIIRR", "other"),
        ("BRI", "other"),
        ("RRB", "other"),
    ],
)
def test_family(arch: str, expected: str) -> None:
    assert family(arch) == expected
    assert family(Genotype.from_canonical(arch)) == expected


def test_family_rejects_non_canonical_text() -> None:
    with pytest.raises(GrammarError):
        family("R*8 I*8")


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RRIX|II", "unknown block 'X' at column 4 in \"RRIX|II\" (known: I, R)"),
        ("r", "unknown block 'r' at column 1 in \"r\" (known: I, R; letters are upper case)"),
        ("R*2 i", "unknown block 'i' at column 5"),
        ("  R X", "unknown block 'X' at column 5"),
        ("R(I", "unclosed '(' at column 2"),
        ("((R)", "unclosed '(' at column 1"),
        ("RR)", "unmatched ')' at column 3"),
        ("(R))I", "unmatched ')' at column 4"),
        (")", "unmatched ')' at column 1"),
        ("R*", "'*' needs a repeat count at column 2"),
        ("R* I", "'*' needs a repeat count at column 2"),
        ("R*0", "repeat count must be at least 1, got 0 at column 3"),
        ("R * 0", "repeat count must be at least 1, got 0 at column 5"),
        ("R#", "unexpected character '#' at column 2"),
        ("R3", "unexpected digit '3' at column 2"),
        ("R*1 6", "unexpected digit '6' at column 5"),
        ("RR||II", "empty stage after '|' at column 3"),
        ("|RR", "empty stage before '|' at column 1"),
        ("RR|", "empty stage after '|' at column 3"),
        ("RR| ", "empty stage after '|' at column 3"),
        ("(R|I)", "'|' inside parentheses (opened at column 1) at column 3"),
        ("()", "empty parentheses '()' at column 1"),
        ("R ( )*2", "empty parentheses '()' at column 3"),
        ("*3", "'*' has nothing to repeat at column 1"),
        ("R|*3", "'*' has nothing to repeat at column 3"),
        ("R*2*3", "'*' has nothing to repeat at column 4"),
        ("R*4:8", "unexpected ':' at column 4"),
        ("((R*999)*999)*999", f"more than {MAX_BLOCKS} blocks"),
        (f"R*{MAX_BLOCKS} R", f"more than {MAX_BLOCKS} blocks"),
        ("R*" + "9" * 5000, f"more than {MAX_BLOCKS} blocks"),
        ("(" * 40 + "R" + ")" * 40, "parentheses nested deeper than 32 at column 33"),
    ],
)
def test_errors_name_column_and_known_letters(text: str, message: str) -> None:
    with pytest.raises(GrammarError) as info:
        parse(text)
    text_of_error = str(info.value)
    assert message in text_of_error
    assert "(known: I, R" in text_of_error
    assert "\n" not in text_of_error
    with pytest.raises(GrammarError):
        resolve(text, DEPTHS)


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_text(text: str) -> None:
    with pytest.raises(GrammarError, match=r"empty architecture string.*known: I, R"):
        parse(text)


def test_error_message_stays_on_one_line_with_original_columns() -> None:
    with pytest.raises(GrammarError) as info:
        parse("R*2\n\tX")
    assert str(info.value) == "unknown block 'X' at column 6 in \"R*2  X\" (known: I, R)"


def test_nesting_up_to_the_limit_parses() -> None:
    assert parse("(" * 32 + "R I" + ")" * 32).flat == "RI"


def test_grammar_errors_are_harness_errors() -> None:
    assert issubclass(GrammarError, HarnessError)


# --- properties -----------------------------------------------------------------------------

letters = st.text(alphabet="RI", min_size=1, max_size=24)
whitespace = st.sampled_from(["", "", "", " ", "  ", "\t", "\n"])


@st.composite
def archs(draw: st.DrawFn) -> Arch:
    stages = draw(st.lists(letters, min_size=1, max_size=5))
    return Arch(tuple(stages), explicit=len(stages) > 1)


@st.composite
def genotypes(draw: st.DrawFn) -> Genotype:
    return Genotype(tuple(draw(st.lists(letters, min_size=1, max_size=6))))


@st.composite
def renderings(draw: st.DrawFn, flat: str, depth: int = 0) -> str:
    """Some grammar text that expands to `flat`: runs, repeats, parentheses, whitespace."""
    ws = lambda: draw(whitespace)  # noqa: E731
    size = len(flat)
    periods = [
        p for p in range(1, size // 2 + 1) if size % p == 0 and flat == flat[:p] * (size // p)
    ]
    options = ["plain"]
    if size > 1:
        options.append("split")
    if periods:
        options.append("repeat")
    if depth < 3:
        options.append("parens")
    choice = draw(st.sampled_from(options))
    if choice == "split":
        at = draw(st.integers(1, size - 1))
        return (
            draw(renderings(flat[:at], depth + 1)) + ws() + draw(renderings(flat[at:], depth + 1))
        )
    if choice == "repeat":
        period = draw(st.sampled_from(periods))
        unit = draw(renderings(flat[:period], depth + 1))
        if period > 1 or len(unit.strip()) != 1:
            unit = f"({ws()}{unit}{ws()})"
        return f"{unit}{ws()}*{ws()}{size // period}"
    if choice == "parens":
        return f"({ws()}{draw(renderings(flat, depth + 1))}{ws()})"
    return ws().join(flat) + draw(st.sampled_from(["", "*1"]))


@settings(max_examples=200, deadline=None)
@given(archs())
def test_format_then_parse_round_trips(arch: Arch) -> None:
    assert parse(format_arch(arch)) == arch


@settings(max_examples=100, deadline=None)
@given(genotypes())
def test_genotype_round_trips(genotype: Genotype) -> None:
    assert Genotype.from_canonical(genotype.canonical) == genotype
    if len(genotype.stages) > 1:
        assert parse(format_arch(genotype)) == Arch(genotype.stages, explicit=True)
    else:
        assert parse(format_arch(genotype)).flat == genotype.flat


@settings(max_examples=200, deadline=None)
@given(st.data(), letters)
def test_equivalent_spellings_canonicalise_equal(data: st.DataObject, flat: str) -> None:
    text = data.draw(renderings(flat))
    assert parse(text).flat == flat
    assert canonicalise(text, DEPTHS) == canonicalise(flat, DEPTHS)
    assert resolve(text, DEPTHS) == canonicalise(flat, DEPTHS) or text.strip() in {"RI", "IR"}


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="RI", min_size=1, max_size=64),
    st.lists(st.integers(1, 8), min_size=1, max_size=6),
)
def test_cut_preserves_blocks(flat: str, depths: list[int]) -> None:
    stages = cut(flat, depths)
    assert "".join(stages) == flat
    assert all(stages)
    assert len(stages) == min(len(flat), len(depths))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="RIX(|)*0123 #r", max_size=20))
def test_any_text_parses_or_raises_grammar_error(text: str) -> None:
    try:
        arch = parse(text)
    except GrammarError as error:
        assert "\n" not in str(error)
    else:
        assert set(arch.flat) <= {"R", "I"}


# --- import hygiene -------------------------------------------------------------------------


def test_import_does_not_pull_in_torch() -> None:
    code = (
        "import sys, harness.grammar; "
        "heavy = sorted(m for m in ('torch', 'timm', 'numpy', 'optuna') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
