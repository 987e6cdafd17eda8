"""Normalisation and field checks: named cases, then properties.

Every ID and card number here is invented and built with python-stdnum's
check-digit functions, an oracle independent of the code under test.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.cn import ric

from gateway.normalize import (
    account_well_formed,
    check_id_number,
    format_fen,
    id_birth_date,
    id_check_char,
    id_number_looks_numeric,
    luhn_ok,
    name_valid,
    normalize_account,
    normalize_id_number,
    normalize_name,
    parse_amount_fen,
)

TODAY = dt.date(2026, 6, 1)


def make_id(region: str = "500154", born: str = "19620517", order: str = "123") -> str:
    """An invented 18-character ID number with a correct check character."""
    body = region + born + order
    return body + ric.calc_check_digit(body + "0")


def wrong_check(number: str) -> str:
    right = number[-1]
    return number[:-1] + ("0" if right != "0" else "1")


def make_card(partial: str = "621459000012345678") -> str:
    """An invented card number with a correct Luhn digit."""
    return partial + luhn.calc_check_digit(partial)


def to_fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# --- ID numbers ------------------------------------------------------------

VALID_ID = make_id()
LEGACY_15 = "500154" + "620517" + "123"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(VALID_ID, VALID_ID, id="already-normal"),
        pytest.param(f"  {VALID_ID}\t", VALID_ID, id="surrounding-whitespace"),
        pytest.param(
            f"{VALID_ID[:6]} {VALID_ID[6:14]}\u3000{VALID_ID[14:]}",
            VALID_ID,
            id="inner-ascii-and-fullwidth-space",
        ),
        pytest.param(to_fullwidth(VALID_ID), VALID_ID, id="fullwidth-digits"),
        pytest.param(f"\ufeff{VALID_ID}\u200b", VALID_ID, id="zero-width-and-bom"),
        pytest.param(
            VALID_ID[:-1] + "x", VALID_ID[:-1] + "X", id="lower-x-upper-cased"
        ),
        pytest.param(LEGACY_15, make_id(born="19620517"), id="legacy-15-upgraded"),
        pytest.param(to_fullwidth(LEGACY_15), make_id(), id="legacy-15-fullwidth"),
        pytest.param("5001546205171", "5001546205171", id="short-left-alone"),
        pytest.param("5.00154E+17", "5.00154E+17", id="numeric-left-alone"),
        pytest.param("", "", id="empty"),
        # Regressions for the fast path of already-clean numbers.
        pytest.param(
            to_fullwidth(VALID_ID[:17]) + VALID_ID[17], VALID_ID, id="fullwidth-body"
        ),
        pytest.param(VALID_ID[:17] + " ", VALID_ID[:17], id="18-chars-trailing-space"),
    ],
)
def test_normalize_id_number(raw: str, expected: str) -> None:
    assert normalize_id_number(raw) == expected


def test_normalize_id_number_folds_fullwidth_x() -> None:
    body = "50015419620517123"
    assert normalize_id_number(body + "\uff58") == body + "X"
    assert normalize_id_number(body + "\uff38") == body + "X"


def test_legacy_upgrade_matches_stdnum_check() -> None:
    upgraded = normalize_id_number(LEGACY_15)
    assert upgraded[:6] == "500154"
    assert upgraded[6:8] == "19"
    assert ric.calc_check_digit(upgraded) == upgraded[-1]


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        pytest.param(VALID_ID, True, id="valid"),
        pytest.param(make_id(region="512222", born="19360911"), True, id="old-sichuan"),
        pytest.param(
            make_id(region="500154", born="19301101"),
            True,
            id="county-code-newer-than-birth",
        ),
        pytest.param(make_id(region="510229"), True, id="abolished-county-code"),
        pytest.param(make_id(region="830000"), True, id="taiwan-residence-permit"),
        pytest.param(make_id(region="950156"), True, id="foreigner-permanent-resident"),
        pytest.param(wrong_check(VALID_ID), False, id="wrong-check-char"),
        pytest.param(make_id(born="19620230"), False, id="february-30"),
        pytest.param(make_id(born="19621301"), False, id="month-13"),
        pytest.param(make_id(born="18991231"), False, id="born-before-1900"),
        pytest.param(make_id(born="19000101"), True, id="born-1900-01-01"),
        pytest.param(make_id(born="20260601"), True, id="born-today"),
        pytest.param(make_id(born="20260602"), False, id="born-tomorrow"),
        pytest.param(make_id(region="990154"), False, id="unknown-province-99"),
        pytest.param(make_id(region="200154"), False, id="unknown-province-20"),
        pytest.param(make_id(region="971154"), False, id="foreigner-bad-province"),
        pytest.param(VALID_ID[:17], False, id="17-chars"),
        pytest.param(VALID_ID + "1", False, id="19-chars"),
        pytest.param(VALID_ID[:16] + "A" + VALID_ID[17], False, id="letter-in-body"),
        pytest.param(VALID_ID[:-1] + "x", False, id="lower-x-not-normalised"),
        pytest.param(to_fullwidth(VALID_ID), False, id="fullwidth-not-normalised"),
        pytest.param("", False, id="empty"),
    ],
)
def test_check_id_number(number: str, valid: bool) -> None:
    assert check_id_number(number, TODAY) is valid


def test_check_id_number_accepts_x_check_char() -> None:
    order = next(
        o for o in (f"{n:03d}" for n in range(1000)) if make_id(order=o)[-1] == "X"
    )
    assert check_id_number(make_id(order=order), TODAY)


@pytest.mark.parametrize(
    ("number", "born"),
    [
        pytest.param(VALID_ID, dt.date(1962, 5, 17), id="valid"),
        pytest.param(make_id(born="19620230"), None, id="impossible-date"),
        pytest.param(VALID_ID[:17], None, id="too-short"),
        pytest.param(VALID_ID[:8] + "AB" + VALID_ID[10:], None, id="letters-in-date"),
    ],
)
def test_id_birth_date(number: str, born: dt.date | None) -> None:
    assert id_birth_date(number) == born


@pytest.mark.parametrize(
    ("raw", "numeric"),
    [
        pytest.param("5.00154E+17", True, id="scientific-upper"),
        pytest.param("5.00154e+17", True, id="scientific-lower"),
        pytest.param("500154196205171000.0", True, id="trailing-point-zero"),
        pytest.param(VALID_ID, False, id="text"),
        pytest.param(LEGACY_15, False, id="legacy-text"),
        pytest.param("", False, id="empty"),
    ],
)
def test_id_number_looks_numeric(raw: str, numeric: bool) -> None:
    assert id_number_looks_numeric(raw) is numeric


@given(st.text(max_size=40))
@example("5.00154E+17")
@example("\uff10" * 18)
def test_id_checks_never_crash_and_accept_only_good_numbers(text: str) -> None:
    normalised = normalize_id_number(text)
    assert normalize_id_number(normalised) == normalised
    if check_id_number(normalised, TODAY):
        assert len(normalised) == 18
        assert ric.calc_check_digit(normalised) == normalised[-1]
        born = id_birth_date(normalised)
        assert born is not None
        assert dt.date(1900, 1, 1) <= born <= TODAY


@given(
    st.sampled_from(["110101", "500154", "500110", "512222", "650102", "820000"]),
    st.dates(dt.date(1900, 1, 1), TODAY),
    st.integers(0, 999),
)
def test_every_well_built_id_is_accepted_and_a_wrong_check_is_not(
    region: str, born: dt.date, order: int
) -> None:
    number = make_id(region, born.strftime("%Y%m%d"), f"{order:03d}")
    assert id_check_char(number[:17]) == number[-1]
    assert check_id_number(number, TODAY)
    assert id_birth_date(number) == born
    assert not check_id_number(wrong_check(number), TODAY)


# --- Names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "valid"),
    [
        pytest.param("张三", "张三", True, id="plain"),
        pytest.param("  张三\u3000", "张三", True, id="trimmed"),
        pytest.param("张  三", "张三", True, id="padding-between-cjk-removed"),
        pytest.param("阿依古丽·买买提", "阿依古丽·买买提", True, id="middle-dot"),
        pytest.param("阿依古丽 • 买买提", "阿依古丽·买买提", True, id="bullet-spaced"),
        pytest.param("阿依古丽．买买提", "阿依古丽·买买提", True, id="fullwidth-stop"),
        pytest.param("阿依古丽・买买提", "阿依古丽·买买提", True, id="katakana-dot"),
        pytest.param(
            "阿依古丽\uff65买买提", "阿依古丽·买买提", True, id="halfwidth-kana-dot"
        ),
        pytest.param(
            "阿依古丽\u2027买买提", "阿依古丽·买买提", True, id="hyphenation-point"
        ),
        pytest.param(
            "阿依古丽\u2219买买提", "阿依古丽·买买提", True, id="bullet-operator"
        ),
        pytest.param(
            "阿依古丽\u0387买买提", "阿依古丽·买买提", True, id="greek-ano-teleia"
        ),
        pytest.param("ＺＨＡＮＧ", "ZHANG", True, id="fullwidth-latin"),
        pytest.param("John   Smith", "John Smith", True, id="latin-words"),
        pytest.param("Anne-Marie O'Neil", "Anne-Marie O'Neil", True, id="latin-hyphen"),
        pytest.param("𠇔明", "𠇔明", True, id="cjk-extension-b"),
        pytest.param("王", "王", True, id="one-character"),
        pytest.param("", "", False, id="empty"),
        pytest.param("   ", "", False, id="blank"),
        pytest.param("张三1", "张三1", False, id="digit"),
        pytest.param("张三(代)", "张三(代)", False, id="brackets"),
        pytest.param("·张三", "·张三", False, id="leading-dot"),
        pytest.param("张三·", "张三·", False, id="trailing-dot"),
        pytest.param("张··三", "张··三", False, id="double-dot"),
        pytest.param("张三Li", "张三Li", False, id="mixed-scripts"),
        pytest.param("张" * 31, "张" * 31, False, id="31-characters"),
        pytest.param("张" * 30, "张" * 30, True, id="30-characters"),
    ],
)
def test_names(raw: str, expected: str, valid: bool) -> None:
    name = normalize_name(raw)
    assert name == expected
    assert name_valid(name) is valid


@given(st.text(max_size=40))
def test_name_checks_never_crash_and_refuse_digits(text: str) -> None:
    name = normalize_name(text)
    assert normalize_name(name) == name
    if name_valid(name):
        assert 1 <= len(name) <= 30
        assert not any(ch.isdigit() for ch in name)
        assert name == name.strip()


# --- Accounts --------------------------------------------------------------

CARD = make_card()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(CARD, CARD, id="plain"),
        pytest.param(f" {CARD[:4]} {CARD[4:8]}\u3000{CARD[8:]} ", CARD, id="spaces"),
        pytest.param(to_fullwidth(CARD), CARD, id="fullwidth"),
        pytest.param(f"{CARD}\u200b", CARD, id="zero-width"),
        pytest.param("6.21459E+18", "6.21459E+18", id="numeric-left-alone"),
    ],
)
def test_normalize_account(raw: str, expected: str) -> None:
    assert normalize_account(raw) == expected


@pytest.mark.parametrize(
    ("digits", "well_formed"),
    [
        pytest.param("1" * 10, True, id="10-digits"),
        pytest.param("1" * 30, True, id="30-digits"),
        pytest.param("1" * 9, False, id="9-digits"),
        pytest.param("1" * 31, False, id="31-digits"),
        pytest.param("6.21459E+18", False, id="scientific"),
        pytest.param("62145900001234567-1", False, id="hyphen"),
        pytest.param("\uff11" * 16, False, id="fullwidth-not-normalised"),
        pytest.param("\u0661" * 16, False, id="arabic-indic-digits"),
        pytest.param("", False, id="empty"),
    ],
)
def test_account_well_formed(digits: str, well_formed: bool) -> None:
    assert account_well_formed(digits) is well_formed


@pytest.mark.parametrize(
    ("digits", "ok"),
    [
        pytest.param(CARD, True, id="valid-card"),
        pytest.param("79927398713", True, id="textbook-example"),
        pytest.param(CARD[:-1] + str((int(CARD[-1]) + 1) % 10), False, id="check-off"),
        pytest.param(CARD[:5] + CARD[6] + CARD[5] + CARD[7:], None, id="transposed"),
        pytest.param("", False, id="empty"),
        pytest.param("12a4", False, id="letter"),
    ],
)
def test_luhn_ok(digits: str, ok: bool | None) -> None:
    expected = luhn.is_valid(digits) if ok is None else ok
    assert luhn_ok(digits) is expected


@given(st.text(alphabet="0123456789", min_size=1, max_size=30))
def test_luhn_agrees_with_stdnum(digits: str) -> None:
    assert luhn_ok(digits) is luhn.is_valid(digits)


@given(st.text(max_size=40))
def test_account_checks_never_crash(text: str) -> None:
    digits = normalize_account(text)
    assert normalize_account(digits) == digits
    if account_well_formed(digits):
        assert digits.isascii()
        assert digits.isdigit()
        assert luhn_ok(digits) is luhn.is_valid(digits)


# --- Amounts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        pytest.param("654.50", 65450, id="two-decimals"),
        pytest.param("654.5", 65450, id="one-decimal"),
        pytest.param("654", 65400, id="whole-yuan"),
        pytest.param("0.01", 1, id="one-fen"),
        pytest.param("1,234.50", 123450, id="thousands"),
        pytest.param("12,345,678.90", 1234567890, id="millions"),
        pytest.param(" 654.50 ", 65450, id="spaces"),
        pytest.param("¥654.50", 65450, id="yen-sign"),
        pytest.param("￥1,234", 123400, id="fullwidth-yen-sign"),
        pytest.param("１，２３４．５０", 123450, id="fullwidth-digits"),
        pytest.param("84.15000000000001", 8415, id="float-artifact-above"),
        pytest.param("84.14999999999999", 8415, id="float-artifact-below"),
        pytest.param("1047.1999999999998", 104720, id="float-artifact-large"),
        pytest.param("84.150", 8415, id="trailing-zero"),
        pytest.param("0", 0, id="zero"),
        pytest.param("0.00", 0, id="zero-decimals"),
        pytest.param("-520.00", -52000, id="negative"),
        pytest.param("-¥5", -500, id="negative-before-sign"),
        pytest.param("¥-5", -500, id="negative-after-sign"),
        pytest.param("+5", 500, id="explicit-plus"),
        pytest.param("¥ 300.50", 30050, id="space-after-yen-sign"),
        pytest.param(" - ¥ 300.50 ", -30050, id="spaced-sign-and-yen"),
        pytest.param("¥\u30001,234.00", 123400, id="ideographic-space-after-yen"),
        pytest.param("1 234.00", None, id="space-inside-number"),
        pytest.param("007.50", 750, id="leading-zeros"),
        pytest.param("9999999999.99", 999999999999, id="ten-yuan-digits"),
        pytest.param("84.151", None, id="three-decimals"),
        pytest.param("84.1501", None, id="four-decimals"),
        pytest.param("84.15001", None, id="a-thousandth-of-a-fen-off"),
        pytest.param("84.155", None, id="half-fen"),
        pytest.param("10000000000", None, id="eleven-yuan-digits"),
        pytest.param("1,23.45", None, id="bad-grouping"),
        pytest.param("1234,567", None, id="bad-grouping-long-head"),
        pytest.param(",123", None, id="leading-comma"),
        pytest.param(".50", None, id="no-yuan"),
        pytest.param("5.", None, id="no-decimals-after-point"),
        pytest.param("1e3", None, id="exponent"),
        pytest.param("壹仟元", None, id="chinese-numerals"),
        pytest.param("八百", None, id="chinese-digits"),
        pytest.param("654.50元", None, id="unit"),
        pytest.param("abc", None, id="text"),
        pytest.param("", None, id="empty"),
        pytest.param("--5", None, id="double-minus"),
        pytest.param("-¥-5", None, id="two-signs"),
        pytest.param("NaN", None, id="nan"),
        pytest.param("Infinity", None, id="infinity"),
        pytest.param("\u0665", None, id="arabic-indic-digit"),
        pytest.param("1" * 65, None, id="too-long"),
    ],
)
def test_parse_amount_fen(text: str, fen: int | None) -> None:
    assert parse_amount_fen(text) == fen


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        pytest.param(123450, "1234.50", id="plain"),
        pytest.param(1, "0.01", id="one-fen"),
        pytest.param(0, "0.00", id="zero"),
        pytest.param(-52000, "-520.00", id="negative"),
        pytest.param(-5, "-0.05", id="negative-fen"),
    ],
)
def test_format_fen(fen: int, text: str) -> None:
    assert format_fen(fen) == text


@given(st.text(max_size=70))
def test_parse_amount_never_crashes(text: str) -> None:
    fen = parse_amount_fen(text)
    assert fen is None or type(fen) is int


@given(st.integers(-(10**12) + 1, 10**12 - 1))
def test_format_then_parse_round_trips(fen: int) -> None:
    assert parse_amount_fen(format_fen(fen)) == fen


@given(
    st.integers(0, 10**10 - 1),
    st.integers(0, 99),
    st.text(alphabet="0123456789", min_size=1, max_size=3),
)
def test_three_to_five_significant_decimals_are_refused(
    yuan: int, cents: int, tail: str
) -> None:
    text = f"{yuan}.{cents:02d}{tail}"
    if tail.strip("0"):
        assert parse_amount_fen(text) is None
    else:
        assert parse_amount_fen(text) == yuan * 100 + cents


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=20, allow_nan=False))
def test_an_accepted_amount_is_within_a_thousandth_of_a_fen(value: Decimal) -> None:
    fen = parse_amount_fen(f"{value:f}")
    if fen is not None:
        assert abs(value * 100 - fen) < Decimal("0.001")


@given(st.integers(0, 10**11), st.integers(0, 10**11))
@example(10, 20)  # 0.1 + 0.2 == 0.30000000000000004
def test_float_sums_of_amounts_parse_to_the_fen(first: int, second: int) -> None:
    # A spreadsheet that adds two amounts holds a binary float, and its text
    # is the float's repr, artifacts and all.
    total = first / 100 + second / 100
    assert parse_amount_fen(repr(total)) == first + second


# --- fast paths agree with the general path --------------------------------

ID_ALPHABET = st.sampled_from([*"0123456789xX ", "\uff10", "\uff58", "\u3000", "a"])


@given(st.lists(ID_ALPHABET, min_size=14, max_size=20).map("".join))
def test_id_fast_path_agrees_with_general_path(text: str) -> None:
    # A leading space always takes the general path.
    assert normalize_id_number(text) == normalize_id_number(" " + text)


@given(st.text(alphabet=st.sampled_from([*"0123456789 ", "\uff11"]), max_size=25))
def test_account_fast_path_agrees_with_general_path(text: str) -> None:
    assert normalize_account(text) == normalize_account(" " + text)
