"""Reason codes: why a payment record is refused, and how to say so.

Every refusal of a record, whether the gateway's own validation (Art. 18) or
the agent bank's account verification and payment, is named by one
``ReasonCode``. A record may carry several; its *primary* reason is the one
that comes first in the declaration order below, which is therefore part of
the contract and must not be reordered casually.

Invariants:
  * The declaration order of ``ReasonCode`` is the priority order. Gateway-side
    codes come before bank-side codes, and within each group the cause a
    department must fix first comes first (a malformed ID number hides every
    check that depends on the person).
  * ``MESSAGES_ZH`` and ``ISO20022`` cover every code; a test checks this and
    also checks that ``docs/reason-codes.md`` shows the same table.
  * Messages name what is wrong and what to do. They never contain the
    record's name, ID number or account number: they are fixed text, so they
    are safe to put in a log line, a metric label or an error.

ISO 20022 mapping: ``ISO20022`` gives each code its nearest
ExternalStatusReason1Code, used when a bank speaks pain.002. Two codes share
RR04 (RegulatoryReason): NOT_ELIGIBLE and EXCLUDED. ``from_iso20022`` reads a
bank's status reason back; where several codes share an ISO code it returns
the bank-side one if there is one, else the one with the highest priority. It
also accepts a few ISO codes that the forward table does not use but that
banks send for the same cause (``ISO20022_ALIASES``).

NOTE: ISO 20022 has a code BE23 "AccountProxyInvalid". Its "proxy" is an
account alias such as a phone number, not a proxy collector under Art. 13,
so PROXY_INVALID deliberately does not map to it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType


class ReasonCode(enum.StrEnum):
    """Why a record is refused. Declaration order is priority order."""

    # Gateway-side: the preset rules of Art. 18.
    ID_INVALID = "ID_INVALID"
    NAME_INVALID = "NAME_INVALID"
    AMOUNT_INVALID = "AMOUNT_INVALID"
    AMOUNT_OVER_LIMIT = "AMOUNT_OVER_LIMIT"
    DUPLICATE_IN_BATCH = "DUPLICATE_IN_BATCH"
    DUPLICATE_PAID = "DUPLICATE_PAID"
    DECEASED = "DECEASED"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    EXCLUDED = "EXCLUDED"
    ACCOUNT_INVALID = "ACCOUNT_INVALID"
    ACCOUNT_NOT_REGISTERED = "ACCOUNT_NOT_REGISTERED"
    PROXY_INVALID = "PROXY_INVALID"
    CORRECTION_INVALID = "CORRECTION_INVALID"
    # Bank-side: account verification and payment by the agent bank.
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
    ACCOUNT_CLOSED = "ACCOUNT_CLOSED"
    ACCOUNT_FROZEN = "ACCOUNT_FROZEN"
    ACCOUNT_HOLDER_MISMATCH = "ACCOUNT_HOLDER_MISMATCH"


BANK_CODES: frozenset[ReasonCode] = frozenset(
    {
        ReasonCode.ACCOUNT_NOT_FOUND,
        ReasonCode.ACCOUNT_CLOSED,
        ReasonCode.ACCOUNT_FROZEN,
        ReasonCode.ACCOUNT_HOLDER_MISMATCH,
    }
)

_RANK: Mapping[ReasonCode, int] = MappingProxyType(
    {code: rank for rank, code in enumerate(ReasonCode)}
)

# What each code means, in English, for docs and operators.
MEANINGS: Mapping[ReasonCode, str] = MappingProxyType(
    {
        ReasonCode.ID_INVALID: "The ID number is malformed: wrong length or "
        "characters, wrong check digit, impossible birth date or unknown "
        "province code.",
        ReasonCode.NAME_INVALID: "The name is missing or malformed.",
        ReasonCode.AMOUNT_INVALID: "The amount is zero, negative or not a number.",
        ReasonCode.AMOUNT_OVER_LIMIT: "The amount is over the policy's limit for "
        "one person in one period.",
        ReasonCode.DUPLICATE_IN_BATCH: "The person already appears earlier in the "
        "same batch with a record that passed validation.",
        ReasonCode.DUPLICATE_PAID: "The person is already paid, or being paid, "
        "for the same policy and period.",
        ReasonCode.DECEASED: "The person is on the deceased list.",
        ReasonCode.NOT_ELIGIBLE: "The person is missing from a reference list "
        "that the policy requires.",
        ReasonCode.EXCLUDED: "The person is on a reference list that the policy "
        "excludes.",
        ReasonCode.ACCOUNT_INVALID: "The account number is malformed, or it "
        "differs from the registered card and fails the card check digit (Luhn).",
        ReasonCode.ACCOUNT_NOT_REGISTERED: "The person has no one-card account, or "
        "the account is not the registered one (Art. 10).",
        ReasonCode.PROXY_INVALID: "Proxy details are incomplete or invalid, or "
        "do not match the registered proxy (Art. 13).",
        ReasonCode.CORRECTION_INVALID: "The record corrects a record that does not "
        "exist, belongs to another department, policy or period, was paid or is "
        "still pending, or is already corrected (Art. 22).",
        ReasonCode.ACCOUNT_NOT_FOUND: "Bank: no such account.",
        ReasonCode.ACCOUNT_CLOSED: "Bank: the account is closed.",
        ReasonCode.ACCOUNT_FROZEN: "Bank: the account is frozen.",
        ReasonCode.ACCOUNT_HOLDER_MISMATCH: "Bank: the name or ID number does not "
        "match the account holder.",
    }
)

# What department staff see: what is wrong, and what to do about it.
MESSAGES_ZH: Mapping[ReasonCode, str] = MappingProxyType(
    {
        ReasonCode.ID_INVALID: (
            "身份证号码位数、校验位错误或出生日期无效，请核对后更正"
        ),
        ReasonCode.NAME_INVALID: (
            "姓名为空或含有数字、符号等无效字符，请按身份证上的姓名填写"
        ),
        ReasonCode.AMOUNT_INVALID: (
            "发放金额为空、为零、为负数或不是有效数字（最多两位小数），请更正"
        ),
        ReasonCode.AMOUNT_OVER_LIMIT: (
            "发放金额超过该补贴政策单人单期的最高标准，请核对金额"
        ),
        ReasonCode.DUPLICATE_IN_BATCH: (
            "该补贴对象在本批次中已有一条通过验证的记录，本条不予发放，请删除重复记录"
        ),
        ReasonCode.DUPLICATE_PAID: (
            "该补贴对象本期已发放或正在发放此项补贴，请勿重复申报"
        ),
        ReasonCode.DECEASED: (
            "该补贴对象已登记为死亡人员，不予发放；如登记有误，请先核实更正"
        ),
        ReasonCode.NOT_ELIGIBLE: (
            "该补贴对象不在本政策要求的比对名单内，请核实其享受资格"
        ),
        ReasonCode.EXCLUDED: (
            "该补贴对象在本政策排除的人员名单内（如财政供养人员），"
            "不得享受此项补贴，请核实"
        ),
        ReasonCode.ACCOUNT_INVALID: "银行账号格式错误或卡号校验位错误，请核对后更正",
        ReasonCode.ACCOUNT_NOT_REGISTERED: (
            "该补贴对象未登记“一卡通”账户，或账号不是其登记的账户，"
            "请核对账号或先办理账户登记、变更"
        ),
        ReasonCode.PROXY_INVALID: (
            "代领人信息不完整或与登记的代领人不一致，请核对代领人姓名和身份证号码"
        ),
        ReasonCode.CORRECTION_INVALID: (
            "更正记录所指的原记录不存在、不属于本部门本政策本期，"
            "或已发放、正在处理、已被更正，请核对原记录编号；只能更正被拒绝、发放失败或已退回的记录"
        ),
        ReasonCode.ACCOUNT_NOT_FOUND: "代发银行查无此账户，请核对账号和开户银行",
        ReasonCode.ACCOUNT_CLOSED: (
            "该账户已销户，请补贴对象办理“一卡通”账户变更后重新申报"
        ),
        ReasonCode.ACCOUNT_FROZEN: (
            "该账户已冻结或止付，请补贴对象到开户银行处理后重新申报"
        ),
        ReasonCode.ACCOUNT_HOLDER_MISMATCH: (
            "账户户名或证件号码与补贴对象不一致，请核对姓名、身份证号码和账号"
        ),
    }
)

# The ID_INVALID message when the spreadsheet stored the ID number as a number
# (5.00154E+17): the last digits are already lost, so the fix is the column's
# format, not the digits staff can see.
ID_STORED_AS_NUMBER_ZH = (
    "身份证号码被表格存成了数字，后几位已丢失；请把该列设置为“文本”格式后重新录入号码"
)

# Nearest ISO 20022 ExternalStatusReason1Code for each reason code.
ISO20022: Mapping[ReasonCode, str] = MappingProxyType(
    {
        ReasonCode.ID_INVALID: "RR12",  # InvalidPartyID
        ReasonCode.NAME_INVALID: "BE21",  # MissingName: missing or invalid
        ReasonCode.AMOUNT_INVALID: "AM12",  # InvalidAmount
        ReasonCode.AMOUNT_OVER_LIMIT: "AM02",  # NotAllowedAmount: over maximum
        ReasonCode.DUPLICATE_IN_BATCH: "AM05",  # Duplication
        ReasonCode.DUPLICATE_PAID: "DUPL",  # DuplicatePayment
        ReasonCode.DECEASED: "MD07",  # EndCustomerDeceased
        ReasonCode.NOT_ELIGIBLE: "RR04",  # RegulatoryReason
        ReasonCode.EXCLUDED: "RR04",  # RegulatoryReason
        ReasonCode.ACCOUNT_INVALID: "AC01",  # IncorrectAccountNumber (format)
        ReasonCode.ACCOUNT_NOT_REGISTERED: "AG01",  # TransactionForbidden
        ReasonCode.PROXY_INVALID: "BE17",  # InvalidCreditorIdentificationCode
        ReasonCode.CORRECTION_INVALID: "NARR",  # Narrative: no closer code
        ReasonCode.ACCOUNT_NOT_FOUND: "AC03",  # InvalidCreditorAccountNumber
        ReasonCode.ACCOUNT_CLOSED: "AC04",  # ClosedAccountNumber
        ReasonCode.ACCOUNT_FROZEN: "AC06",  # BlockedAccount
        ReasonCode.ACCOUNT_HOLDER_MISMATCH: "BE01",  # InconsistentWithEndCustomer
    }
)

# ISO codes the forward table does not use, read back by ``from_iso20022``.
ISO20022_ALIASES: Mapping[str, ReasonCode] = MappingProxyType(
    {
        "AM01": ReasonCode.AMOUNT_INVALID,  # ZeroAmount
        "RR03": ReasonCode.NAME_INVALID,  # MissingCreditorNameOrAddress
        "BE22": ReasonCode.NAME_INVALID,  # MissingCreditorName
        "BE06": ReasonCode.ACCOUNT_NOT_FOUND,  # UnknownEndCustomer
        "AC07": ReasonCode.ACCOUNT_CLOSED,  # ClosedCreditorAccountNumber
    }
)

# The ISO 20022 names of the codes above, for documents and operators.
ISO20022_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "AC01": "IncorrectAccountNumber",
        "AC03": "InvalidCreditorAccountNumber",
        "AC04": "ClosedAccountNumber",
        "AC06": "BlockedAccount",
        "AC07": "ClosedCreditorAccountNumber",
        "AG01": "TransactionForbidden",
        "AM01": "ZeroAmount",
        "AM02": "NotAllowedAmount",
        "AM05": "Duplication",
        "AM12": "InvalidAmount",
        "BE01": "InconsistentWithEndCustomer",
        "BE06": "UnknownEndCustomer",
        "BE17": "InvalidCreditorIdentificationCode",
        "BE21": "MissingName",
        "BE22": "MissingCreditorName",
        "DUPL": "DuplicatePayment",
        "MD07": "EndCustomerDeceased",
        "NARR": "Narrative",
        "RR03": "MissingCreditorNameOrAddress",
        "RR04": "RegulatoryReason",
        "RR12": "InvalidPartyID",
    }
)


# Codes a bank's status report can never mean: a bank's "narrative" rejection
# (NARR) is not a verdict on a department's correction.
_NEVER_FROM_A_BANK = frozenset({ReasonCode.CORRECTION_INVALID})


def _reverse_iso20022() -> Mapping[str, ReasonCode]:
    # Iterate in priority order and keep the first code seen for each ISO
    # code, except that a bank-side code displaces a gateway-side one: the
    # reverse map reads what a bank reported.
    reverse: dict[str, ReasonCode] = {}
    for code in ReasonCode:
        if code in _NEVER_FROM_A_BANK:
            continue
        iso = ISO20022[code]
        held = reverse.get(iso)
        if held is None or (code in BANK_CODES and held not in BANK_CODES):
            reverse[iso] = code
    for iso, code in ISO20022_ALIASES.items():
        reverse.setdefault(iso, code)
    return MappingProxyType(reverse)


_FROM_ISO20022 = _reverse_iso20022()


def from_iso20022(code: str) -> ReasonCode | None:
    """The reason code for an ISO 20022 status reason, or None if unknown."""
    return _FROM_ISO20022.get(code.strip().upper())


def ordered(codes: Iterable[ReasonCode]) -> list[ReasonCode]:
    """The distinct codes in priority order; the first is the primary reason."""
    return sorted(set(codes), key=_RANK.__getitem__)


def message_zh(code: ReasonCode, *, id_stored_as_number: bool = False) -> str:
    """The message for department staff, with the stored-as-number variant."""
    if code is ReasonCode.ID_INVALID and id_stored_as_number:
        return ID_STORED_AS_NUMBER_ZH
    return MESSAGES_ZH[code]
