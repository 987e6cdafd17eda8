"""Reason codes: their order, their tables, and the document that shows them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from gateway.reasons import (
    BANK_CODES,
    ID_STORED_AS_NUMBER_ZH,
    ISO20022,
    ISO20022_ALIASES,
    ISO20022_NAMES,
    MEANINGS,
    MESSAGES_ZH,
    ReasonCode,
    from_iso20022,
    message_zh,
    ordered,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "reason-codes.md"

PRIORITY = [
    "ID_INVALID",
    "NAME_INVALID",
    "AMOUNT_INVALID",
    "AMOUNT_OVER_LIMIT",
    "DUPLICATE_IN_BATCH",
    "DUPLICATE_PAID",
    "DECEASED",
    "NOT_ELIGIBLE",
    "EXCLUDED",
    "ACCOUNT_INVALID",
    "ACCOUNT_NOT_REGISTERED",
    "PROXY_INVALID",
    "CORRECTION_INVALID",
    "ACCOUNT_NOT_FOUND",
    "ACCOUNT_CLOSED",
    "ACCOUNT_FROZEN",
    "ACCOUNT_HOLDER_MISMATCH",
]

R = ReasonCode


class TestTheCodes:
    def test_members_are_exactly_these_in_priority_order(self) -> None:
        assert [code.name for code in ReasonCode] == PRIORITY
        assert [str(code) for code in ReasonCode] == PRIORITY

    def test_bank_codes_are_the_last_four(self) -> None:
        assert frozenset(list(ReasonCode)[-4:]) == BANK_CODES

    @pytest.mark.parametrize(
        "table",
        [
            pytest.param(MEANINGS, id="meanings"),
            pytest.param(MESSAGES_ZH, id="messages"),
            pytest.param(ISO20022, id="iso20022"),
        ],
    )
    def test_every_table_covers_every_code(
        self, table: Mapping[ReasonCode, str]
    ) -> None:
        assert list(table) == list(ReasonCode)
        assert all(table.values())

    @pytest.mark.parametrize("code", list(ReasonCode), ids=str)
    def test_message_is_chinese_and_says_what_to_do(self, code: ReasonCode) -> None:
        message = MESSAGES_ZH[code]
        assert re.search(r"[\u4e00-\u9fff]", message)
        assert "请" in message
        assert not re.search(r"\d{4,}", message)

    def test_stored_as_number_message(self) -> None:
        assert "文本" in ID_STORED_AS_NUMBER_ZH
        assert message_zh(R.ID_INVALID, id_stored_as_number=True) == (
            ID_STORED_AS_NUMBER_ZH
        )
        assert message_zh(R.ID_INVALID) == MESSAGES_ZH[R.ID_INVALID]
        assert (
            message_zh(R.NAME_INVALID, id_stored_as_number=True)
            == (MESSAGES_ZH[R.NAME_INVALID])
        )


class TestOrdered:
    @pytest.mark.parametrize(
        ("codes", "expected"),
        [
            pytest.param([], [], id="empty"),
            pytest.param([R.EXCLUDED], [R.EXCLUDED], id="one"),
            pytest.param(
                [R.ACCOUNT_FROZEN, R.ID_INVALID, R.DECEASED],
                [R.ID_INVALID, R.DECEASED, R.ACCOUNT_FROZEN],
                id="sorted-by-priority",
            ),
            pytest.param(
                [R.PROXY_INVALID, R.PROXY_INVALID, R.NAME_INVALID],
                [R.NAME_INVALID, R.PROXY_INVALID],
                id="deduplicated",
            ),
            pytest.param(
                iter([R.DUPLICATE_PAID, R.DUPLICATE_IN_BATCH]),
                [R.DUPLICATE_IN_BATCH, R.DUPLICATE_PAID],
                id="any-iterable",
            ),
        ],
    )
    def test_ordered(self, codes: list[ReasonCode], expected: list[ReasonCode]) -> None:
        assert ordered(codes) == expected

    def test_everything_reversed_comes_back_in_declaration_order(self) -> None:
        assert ordered(reversed(list(ReasonCode))) == list(ReasonCode)


class TestIso20022:
    @pytest.mark.parametrize("code", list(ReasonCode), ids=str)
    def test_codes_are_well_formed_and_named(self, code: ReasonCode) -> None:
        iso = ISO20022[code]
        assert re.fullmatch(r"[A-Z0-9]{4}", iso)
        assert iso in ISO20022_NAMES

    @pytest.mark.parametrize(
        ("iso", "expected"),
        [
            pytest.param("AC01", R.ACCOUNT_INVALID, id="AC01"),
            pytest.param("AC03", R.ACCOUNT_NOT_FOUND, id="AC03"),
            pytest.param("AC04", R.ACCOUNT_CLOSED, id="AC04"),
            pytest.param("AC06", R.ACCOUNT_FROZEN, id="AC06"),
            pytest.param("BE01", R.ACCOUNT_HOLDER_MISMATCH, id="BE01"),
            pytest.param("MD07", R.DECEASED, id="MD07"),
            pytest.param("AM05", R.DUPLICATE_IN_BATCH, id="AM05"),
            pytest.param("DUPL", R.DUPLICATE_PAID, id="DUPL"),
            pytest.param("RR04", R.NOT_ELIGIBLE, id="RR04-shared-highest-priority"),
            pytest.param("AC07", R.ACCOUNT_CLOSED, id="alias-AC07"),
            pytest.param("BE06", R.ACCOUNT_NOT_FOUND, id="alias-BE06"),
            pytest.param("AM01", R.AMOUNT_INVALID, id="alias-AM01"),
            pytest.param(" ac04 ", R.ACCOUNT_CLOSED, id="trimmed-and-upper-cased"),
            pytest.param("BE23", None, id="account-alias-proxy-is-not-art-13"),
            pytest.param("ZZ99", None, id="unknown"),
            pytest.param("", None, id="empty"),
        ],
    )
    def test_from_iso20022(self, iso: str, expected: ReasonCode | None) -> None:
        assert from_iso20022(iso) is expected

    @pytest.mark.parametrize(
        "code", sorted(BANK_CODES, key=list(ReasonCode).index), ids=str
    )
    def test_bank_codes_round_trip(self, code: ReasonCode) -> None:
        assert from_iso20022(ISO20022[code]) is code

    def test_unshared_codes_round_trip(self) -> None:
        for code in ReasonCode:
            sharing = [c for c in ReasonCode if ISO20022[c] == ISO20022[code]]
            if len(sharing) == 1 and code is not ReasonCode.CORRECTION_INVALID:
                assert from_iso20022(ISO20022[code]) is code

    def test_a_banks_narrative_rejection_is_not_a_correction_verdict(self) -> None:
        assert ISO20022[ReasonCode.CORRECTION_INVALID] == "NARR"
        assert from_iso20022("NARR") is None

    def test_aliases_are_not_already_in_the_forward_table(self) -> None:
        assert not set(ISO20022_ALIASES) & set(ISO20022.values())
        assert set(ISO20022_ALIASES) <= set(ISO20022_NAMES)


class TestDocument:
    """docs/reason-codes.md shows the same table as the module."""

    def _rows(self) -> list[list[str]]:
        rows = []
        for line in DOC.read_text(encoding="utf-8").splitlines():
            if line.startswith("| `"):
                cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
                rows.append(cells)
        return rows

    def test_table_matches_the_module(self) -> None:
        expected = [
            [
                f"`{code}`",
                MEANINGS[code],
                MESSAGES_ZH[code],
                f"{ISO20022[code]} {ISO20022_NAMES[ISO20022[code]]}",
            ]
            for code in ReasonCode
        ]
        assert self._rows() == expected

    def test_aliases_and_stored_as_number_message_are_shown(self) -> None:
        text = DOC.read_text(encoding="utf-8")
        assert ID_STORED_AS_NUMBER_ZH in text
        for iso, code in ISO20022_ALIASES.items():
            assert f"| {iso} {ISO20022_NAMES[iso]} | `{code}` |" in text
