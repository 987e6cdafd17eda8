"""A fictional sample data set, in the layout of the shared ``samples/`` set.

``generate(out)`` writes a complete data set for the demo, so that the demo
runs on a machine without ``../shared/samples``:

* ``policies.csv``, ``agent-banks.csv``, ``banks.csv`` and
  ``batches/manifest.csv``: the public reference data (policy list, agent-bank
  choices, bank codes, the five department files), reproduced as they are;
* ``registry/accounts.csv``: the one-card account registry, one row a person;
* ``lists/{deceased,public-servants,poverty-registered,disabled}.csv``;
* ``banks/<BANK>.csv``: what each bank knows of every account it holds;
* the five department files under ``batches/``, each in its department's own
  format: an ``.xlsx`` with a merged title row and a 合计 row, a GBK CSV, a
  UTF-8 CSV with a byte-order mark and two plain UTF-8 CSVs, with the header
  names each department uses;
* ``expected-outcomes.csv`` (not part of the shared layout): for every record
  of every department file, the outcome and reason the whole flow should give;
* ``README.md``: what the directory is and how it was made.

Invariants:

1. Fictional. No row comes from real data or from the shared samples. Names
   are drawn from surname and given-name lists. ID numbers have valid GB 11643
   check digits, real birth dates and the region codes that the three counties
   (开州区 500154, 綦江区 500110, 云阳县 500235) have carried over time,
   including the old Sichuan codes (51xxxx). Card numbers start with the
   invented prefixes of ``banks.csv`` and end in a valid Luhn digit; passbook
   numbers start with 1 and have no check digit.
2. Deterministic. The same seed and scale give the same bytes in every file,
   the ``.xlsx`` included (its zip timestamps are pinned).
3. Consistent across files. Every registry ID is valid; every registry
   account is in its bank's ledger, held by the person or, where a proxy
   (代领人) is registered, by the proxy; only the accounts planted as a
   holder mismatch show another name or ID there. The lists and the ledgers
   are what make a planted problem a problem: a deceased person is on
   ``deceased``, a closed account is CLOSED in its bank's ledger, and so on.
4. One problem per planted record, so its expected reason is unambiguous.
   Clean records are PAID. The expectations assume the files are submitted
   in manifest order (the supplement comes after the main cropland file) and
   that a card number failing Luhn is ACCOUNT_INVALID only when it is not the
   person's registered account.

What is planted, by kind (``KINDS``), and what each should produce:

======================== ========= ==========================================
kind                     outcome   reason
======================== ========= ==========================================
id_check_digit           REJECTED  ID_INVALID (a mistyped digit)
id_birth_date            REJECTED  ID_INVALID (impossible date, valid check)
amount_over_limit        REJECTED  AMOUNT_OVER_LIMIT
amount_zero / _negative  REJECTED  AMOUNT_INVALID
amount_not_number        REJECTED  AMOUNT_INVALID (壹仟元, abc)
duplicate_in_batch       REJECTED  DUPLICATE_IN_BATCH (the later copy)
duplicate_paid           REJECTED  DUPLICATE_PAID (supplement repeats main)
deceased                 REJECTED  DECEASED
not_on_required_list     REJECTED  NOT_ELIGIBLE (CQ-MZ-003 needs disabled)
on_excluded_list         REJECTED  EXCLUDED (public-servants)
card_fails_luhn          REJECTED  ACCOUNT_INVALID (typo in a card number)
other_account            REJECTED  ACCOUNT_NOT_REGISTERED (own, other card)
not_in_registry          REJECTED  ACCOUNT_NOT_REGISTERED (no one-card acct)
account_unknown_to_bank  REJECTED  ACCOUNT_NOT_REGISTERED (see NOTE)
proxy_not_registered     REJECTED  PROXY_INVALID (not the registered proxy)
account_closed           REJECTED  ACCOUNT_CLOSED
account_frozen           REJECTED  ACCOUNT_FROZEN
holder_name_mismatch     REJECTED  ACCOUNT_HOLDER_MISMATCH
holder_id_mismatch       REJECTED  ACCOUNT_HOLDER_MISMATCH
frozen_after_verify      FAILED    ACCOUNT_FROZEN (NORMAL, then FROZEN)
returned_after_payment   RETURNED  ACCOUNT_CLOSED (cross-bank refund)
======================== ========= ==========================================

These look like problems but are not, and must be PAID: ``proxy`` (paid to a
registered proxy's account), ``registered_card_fails_luhn`` (a genuine
registered card whose number fails Luhn; registry and bank both hold it),
``elderly_new_region_code`` (an old person whose region code was created
after their birth), ``listed_not_excluded`` (a public servant under a policy
that excludes nobody) and ``name_with_middle_dot`` (a minority name such as
阿依古丽·买买提).

A refunded cross-bank credit is RETURNED; its reason is ACCOUNT_CLOSED, the
usual cause of a refund, although the ledger says RETURN_AFTER_PAYMENT.

NOTE: the registry invariant means an account unknown to every bank can only
appear in a department file as an account that is not registered, so the
gateway refuses it (ACCOUNT_NOT_REGISTERED) before any bank is asked, as in
the shared set. ACCOUNT_NOT_FOUND is never an expected reason here, and
neither is NAME_INVALID: the shared set plants neither.

``expected-outcomes.csv`` has ``file,row,outcome,reasons``: ``row`` is the
1-based record below the header row, ``reasons`` the ``;``-separated codes,
primary first (one code, since each record has one problem).
"""

from __future__ import annotations

import csv
import io
import random
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import openpyxl
from openpyxl.utils import get_column_letter

__all__ = [
    "EXPECTED_OUTCOMES",
    "KINDS",
    "KIND_OUTCOMES",
    "LIST_NAMES",
    "LedgerEntry",
    "Record",
    "RegistryEntry",
    "SampleSet",
    "build",
    "generate",
    "id_check_digit",
    "luhn_check_digit",
    "luhn_valid",
]

EXPECTED_OUTCOMES = "expected-outcomes.csv"

# --------------------------------------------------------------------------
# Public reference data: the same policies, counties, banks and connectors as
# the shared set. None of it describes a person.


def _table(text: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """The header and rows of a small CSV table written inline."""
    header, *rows = csv.reader(text.strip().splitlines())
    return tuple(header), tuple(tuple(row) for row in rows)


_POLICY_HEADER, _POLICIES = _table("""
policy_code,policy_name,department,department_name,period,max_amount_yuan,requires_list,excludes_list
CQ-NY-001,耕地地力保护补贴,NYNC,农业农村委员会,year,20000.00,,
CQ-MZ-002,城乡居民最低生活保障金,MZ,民政局,month,3000.00,,public-servants
CQ-MZ-003,困难残疾人生活补贴,MZ,民政局,month,500.00,disabled,public-servants
CQ-WJ-004,农村部分计划生育家庭奖励扶助金,WJ,卫生健康委员会,year,2000.00,,
CQ-SL-005,大中型水库移民后期扶持补助,SL,水利局,year,600.00,,
CQ-JW-006,普通高中国家助学金,JW,教育委员会,year,2000.00,,
CQ-LY-007,生态护林员补助,LY,林业局,month,10000.00,poverty-registered,
""")

_AGENT_BANK_HEADER, _AGENT_BANKS = _table("""
county,county_name,policy_code,agent_bank,connector
500154,开州区,CQ-NY-001,CQRCB,grpc-pull
500154,开州区,CQ-MZ-003,CQRCB,grpc-pull
500110,綦江区,CQ-MZ-002,PSBC,fixed-width-file
500110,綦江区,CQ-WJ-004,ABC,iso20022-file
500235,云阳县,CQ-SL-005,PSBC,fixed-width-file
""")

_BANK_HEADER, _BANKS = _table("""
bank,bank_name,card_prefix
CQRCB,重庆农村商业银行,621459
PSBC,中国邮政储蓄银行,621798
ABC,中国农业银行,622848
ICBC,中国工商银行,622202
CCB,中国建设银行,621700
BOCQ,重庆银行,622615
""")
_BANK_NAMES = {code: name for code, name, _ in _BANKS}
_CARD_PREFIXES = {code: prefix for code, _, prefix in _BANKS}
# Rough share of one-card accounts per bank in rural Chongqing, in _BANKS order.
_BANK_WEIGHTS = (42, 20, 15, 9, 8, 6)

_MANIFEST_HEADER, _MANIFEST = _table("""
order,file,county,department,policy_code,period
1,500154-NYNC-CQ-NY-001-2026.xlsx,500154,NYNC,CQ-NY-001,2026
2,500110-MZ-CQ-MZ-002-2026-12.csv,500110,MZ,CQ-MZ-002,2026-12
3,500154-NYNC-CQ-NY-001-2026-supplement.csv,500154,NYNC,CQ-NY-001,2026
4,500110-WJ-CQ-WJ-004-2026.csv,500110,WJ,CQ-WJ-004,2026
5,500154-MZ-CQ-MZ-003-2026-12.csv,500154,MZ,CQ-MZ-003,2026-12
""")

_COUNTY_NAMES = {"500154": "开州区", "500110": "綦江区", "500235": "云阳县"}

# The region codes each county has carried, with the years they were in use
# (GB/T 2260). 开州 was 开县 of 万县地区 (512222), of 万县市 (511221), of
# Chongqing (500234), and 开州区 since 2016; 綦江 and 云阳 likewise.
_REGION_CODES: dict[str, tuple[tuple[str, int, int], ...]] = {
    "500154": (
        ("512222", 0, 1992),
        ("511221", 1992, 1997),
        ("500234", 1997, 2016),
        ("500154", 2016, 9999),
    ),
    "500110": (
        ("510223", 0, 1997),
        ("500222", 1997, 2011),
        ("500110", 2011, 9999),
    ),
    "500235": (
        ("512225", 0, 1992),
        ("511224", 1992, 1997),
        ("500235", 1997, 9999),
    ),
}

LIST_NAMES = ("deceased", "public-servants", "poverty-registered", "disabled")

_NORMAL = "NORMAL"
_CLOSED = "CLOSED"
_FROZEN = "FROZEN"
_RETURNED = "RETURN_AFTER_PAYMENT"
_SOCIAL_SECURITY_CARD = "社保卡"
_BANK_CARD = "银行卡"
_PASSBOOK = "存折"

# --------------------------------------------------------------------------
# Names. Surnames in rough order of frequency, with a few that are common in
# Chongqing (冉, 牟, 向, 谭); given names by sex.

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董"
    "袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊"
    "秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤冉牟易骆伍左"
)
_SURNAME_WEIGHTS = tuple(1.0 / (rank + 4) for rank in range(len(_SURNAMES)))


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_MALE_GIVEN = _words("""
    伟 强 军 勇 磊 洋 杰 涛 明 超 刚 平 辉 鹏 华 飞 鑫 波 斌 宇 浩 凯 健 俊
    帆 帅 旭 宁 龙 林 阳 建华 建国 建军 志强 志明 国强 国平 海涛 文杰 俊杰
    家豪 子轩 浩然 德明 永福 长青 光明 春生 德华 云飞 庆 成 兵 东 亮 峰
""")
_FEMALE_GIVEN = _words("""
    芳 娜 敏 静 丽 艳 娟 霞 秀英 桂英 秀兰 玉兰 桂兰 秀珍 凤英 玉珍 玉梅
    丽娟 红梅 海燕 春梅 丹丹 婷婷 雪 琳 晶 燕 慧 颖 倩 莉 萍 玉英 淑华
    淑珍 桂芳 小红 金凤 兰英 冬梅 欣怡 梓涵 雨萱 思琪 琴 梅 英 红 丹
""")
_MIDDLE_DOT_NAMES = _words("""
    阿依古丽·买买提 买买提·艾力 热依拉·吐尔逊 古丽娜尔·阿不都 艾尔肯·托合提
    帕提曼·肉孜
""")
# A bank's record of a name that differs from the ID card by one character.
_SIMILAR_CHARS = dict(
    zip("华军英兰芳丽明红平静林梅", "桦君瑛岚方莉铭虹萍婧琳媚", strict=True)
)

# --------------------------------------------------------------------------
# Kinds of records, and what the whole flow should make of each.

_PAID = ("PAID", "")
KIND_OUTCOMES: dict[str, tuple[str, str]] = {
    "clean": _PAID,
    "proxy": _PAID,
    "registered_card_fails_luhn": _PAID,
    "elderly_new_region_code": _PAID,
    "listed_not_excluded": _PAID,
    "name_with_middle_dot": _PAID,
    "id_check_digit": ("REJECTED", "ID_INVALID"),
    "id_birth_date": ("REJECTED", "ID_INVALID"),
    "amount_over_limit": ("REJECTED", "AMOUNT_OVER_LIMIT"),
    "amount_zero": ("REJECTED", "AMOUNT_INVALID"),
    "amount_negative": ("REJECTED", "AMOUNT_INVALID"),
    "amount_not_number": ("REJECTED", "AMOUNT_INVALID"),
    "duplicate_in_batch": ("REJECTED", "DUPLICATE_IN_BATCH"),
    "duplicate_paid": ("REJECTED", "DUPLICATE_PAID"),
    "deceased": ("REJECTED", "DECEASED"),
    "not_on_required_list": ("REJECTED", "NOT_ELIGIBLE"),
    "on_excluded_list": ("REJECTED", "EXCLUDED"),
    "card_fails_luhn": ("REJECTED", "ACCOUNT_INVALID"),
    "other_account": ("REJECTED", "ACCOUNT_NOT_REGISTERED"),
    "not_in_registry": ("REJECTED", "ACCOUNT_NOT_REGISTERED"),
    "account_unknown_to_bank": ("REJECTED", "ACCOUNT_NOT_REGISTERED"),
    "proxy_not_registered": ("REJECTED", "PROXY_INVALID"),
    "account_closed": ("REJECTED", "ACCOUNT_CLOSED"),
    "account_frozen": ("REJECTED", "ACCOUNT_FROZEN"),
    "holder_name_mismatch": ("REJECTED", "ACCOUNT_HOLDER_MISMATCH"),
    "holder_id_mismatch": ("REJECTED", "ACCOUNT_HOLDER_MISMATCH"),
    "frozen_after_verify": ("FAILED", "ACCOUNT_FROZEN"),
    "returned_after_payment": ("RETURNED", "ACCOUNT_CLOSED"),
}
KINDS = tuple(kind for kind in KIND_OUTCOMES if kind != "clean")


# --------------------------------------------------------------------------
# Check digits.

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_check_digit(first17: str) -> str:
    """The GB 11643 check digit for the first 17 digits of an ID number."""
    total = sum(
        int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True)
    )
    return "10X98765432"[total % 11]


def luhn_check_digit(partial: str) -> str:
    """The Luhn digit to append to ``partial``."""
    total = 0
    for position, char in enumerate(reversed(partial)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str(-total % 10)


def luhn_valid(number: str) -> bool:
    return luhn_check_digit(number[:-1]) == number[-1]


# --------------------------------------------------------------------------
# The data set, as values.


@dataclass(frozen=True)
class Person:
    id_number: str
    name: str
    birth: date
    county: str


@dataclass(frozen=True)
class Account:
    bank: str
    number: str
    kind: str


@dataclass(frozen=True)
class RegistryEntry:
    """A registered one-card account; ``proxy`` holds it where one is set."""

    person: Person
    account: Account
    proxy: Person | None = None

    @property
    def holder(self) -> Person:
        return self.proxy or self.person


@dataclass(frozen=True)
class LedgerEntry:
    account: str
    holder_name: str
    holder_id_number: str
    status: str = _NORMAL
    status_at_payment: str = _NORMAL


@dataclass(frozen=True)
class Record:
    """One line of a department file, as written, with what it should produce."""

    name: str
    id_number: str
    amount: str
    bank_name: str
    account: str
    proxy_name: str = ""
    proxy_id_number: str = ""
    area: str = ""
    household: str = ""
    kind: str = "clean"

    @property
    def outcome(self) -> str:
        return KIND_OUTCOMES[self.kind][0]

    @property
    def reasons(self) -> str:
        return KIND_OUTCOMES[self.kind][1]


@dataclass
class SampleSet:
    """Everything ``generate`` writes, in memory and in file order."""

    registry: list[RegistryEntry]
    ledgers: dict[str, list[LedgerEntry]]
    lists: dict[str, list[str]]
    batches: dict[str, list[Record]]


# --------------------------------------------------------------------------
# The five department files: who is in them and what is planted, at scale 1.


@dataclass(frozen=True)
class _FileSpec:
    file: str
    style: str  # how amounts are made: cropland, living, family, disability
    size: int
    born: tuple[int, int]
    plants: tuple[tuple[str, int], ...]
    proxy_columns: bool = False
    reuse: float = 0.0  # share of clean people taken from earlier files
    repeats: str = ""  # the earlier file that duplicate_paid records copy

    @property
    def county(self) -> str:
        return self._manifest[2]

    @property
    def policy(self) -> str:
        return self._manifest[4]

    @property
    def period(self) -> str:
        return self._manifest[5]

    @property
    def agent_bank(self) -> str:
        return next(
            row[3]
            for row in _AGENT_BANKS
            if row[0] == self.county and row[2] == self.policy
        )

    @property
    def requires_list(self) -> str:
        return _policy(self.policy)[6]

    @property
    def _manifest(self) -> tuple[str, ...]:
        return next(row for row in _MANIFEST if row[1] == self.file)


def _policy(code: str) -> tuple[str, ...]:
    return next(row for row in _POLICIES if row[0] == code)


# How many records of each kind each file gets at scale 1 (the column is the
# file's manifest order). Any kind with a count gets at least one at any scale.
_PLANT_COUNTS = """
kind                          1    2    3    4    5
elderly_new_region_code      40   15    0   10    0
proxy                        15    0    1    0    0
registered_card_fails_luhn    3    0    0    0    0
listed_not_excluded           3    0    0    0    0
name_with_middle_dot          3    2    0    0    0
id_check_digit                5    2    0    0    0
id_birth_date                 2    3    0    0    0
amount_over_limit             3    2    0    0    1
amount_zero                   1    1    0    0    1
amount_negative               0    2    0    1    0
amount_not_number             0    2    0    1    0
duplicate_in_batch            6    2    0    0    0
duplicate_paid                0    0   12    0    0
deceased                      8    3    0    2    1
not_on_required_list          0    0    0    0    8
on_excluded_list              0    8    0    0    2
card_fails_luhn               4    0    0    0    1
other_account                 4    2    0    0    0
not_in_registry               3    0    0    0    0
account_unknown_to_bank       3    0    0    0    0
proxy_not_registered          3    0    0    0    0
account_closed                6    3    0    2    1
account_frozen                4    0    0    0    1
holder_name_mismatch          4    0    0    1    0
holder_id_mismatch            1    3    0    1    0
frozen_after_verify           3    2    0    1    0
returned_after_payment        3    2    0    1    0
"""


def _plants(order: int) -> tuple[tuple[str, int], ...]:
    rows = [line.split() for line in _PLANT_COUNTS.strip().splitlines()[1:]]
    return tuple((row[0], int(row[order])) for row in rows if int(row[order]))


_CROPLAND_XLSX = "500154-NYNC-CQ-NY-001-2026.xlsx"
_SPECS = (
    _FileSpec(
        file=_CROPLAND_XLSX,
        style="cropland",
        size=3000,
        born=(1935, 2000),
        proxy_columns=True,
        plants=_plants(1),
    ),
    _FileSpec(
        file="500110-MZ-CQ-MZ-002-2026-12.csv",
        style="living",
        size=1400,
        born=(1935, 2010),
        plants=_plants(2),
    ),
    _FileSpec(
        file="500154-NYNC-CQ-NY-001-2026-supplement.csv",
        style="cropland",
        size=250,
        born=(1940, 2000),
        proxy_columns=True,
        repeats=_CROPLAND_XLSX,
        plants=_plants(3),
    ),
    _FileSpec(
        file="500110-WJ-CQ-WJ-004-2026.csv",
        style="family",
        size=700,
        born=(1936, 1966),
        reuse=0.1,
        plants=_plants(4),
    ),
    _FileSpec(
        file="500154-MZ-CQ-MZ-003-2026-12.csv",
        style="disability",
        size=650,
        born=(1935, 2008),
        reuse=0.15,
        plants=_plants(5),
    ),
)

# People known to the registry and the banks but in no department file, and
# the extra names on the reference lists, at scale 1.
_BYSTANDERS = 1500
_BYSTANDER_COUNTIES = (("500154", 0.5), ("500110", 0.3), ("500235", 0.2))
_EXTRA_DECEASED = 40
_EXTRA_PUBLIC_SERVANTS = 30
_EXTRA_DISABLED = 200
_POVERTY_SHARE = 0.1
_SECOND_ACCOUNT_SHARE = 0.03

_CROPLAND_RATE = Decimal("93.50")
_LIVING_PER_HEAD = (260, 340, 390, 520, 650)
_FAMILY_AMOUNT = Decimal("960.00")
_DISABILITY_AMOUNT = Decimal("90.00")
_OVER_LIMIT = {
    "living": "5200.00",
    "family": "9600.00",
    "disability": "900.00",
}
_NOT_NUMBERS = ("壹仟元", "壹佰元", "abc", "九十元")


# --------------------------------------------------------------------------
# The world: every person, account, registry entry, ledger entry and list
# entry made so far, and the one random generator that makes them.


class _World:
    def __init__(self, seed: int) -> None:
        # Fictional test data, not secrets: a seeded PRNG is what we want.
        self.rng = random.Random(seed)  # noqa: S311
        self.ids: set[str] = set()
        self.numbers: set[str] = set()
        self.registry: dict[str, RegistryEntry] = {}
        self.ledgers: dict[str, dict[str, LedgerEntry]] = {b[0]: {} for b in _BANKS}
        self.lists: dict[str, dict[str, None]] = {name: {} for name in LIST_NAMES}
        self.batches: dict[str, list[Record]] = {}
        # Clean people, by county, whom a later file may also pay.
        self.pool: dict[str, list[RegistryEntry]] = {c: [] for c in _COUNTY_NAMES}

    # People.

    def person(
        self,
        county: str,
        born: tuple[int, int],
        *,
        newer_code: bool = False,
        name: str = "",
    ) -> Person:
        rng = self.rng
        birth = date(rng.randint(*born), 1, 1) + timedelta(days=rng.randrange(365))
        code = self._region_code(county, birth.year, newer=newer_code)
        male = rng.random() < 0.5
        while True:
            sequence = rng.randrange(1000) // 2 * 2 + (1 if male else 0)
            first17 = f"{code}{birth:%Y%m%d}{sequence:03d}"
            id_number = first17 + id_check_digit(first17)
            if id_number not in self.ids:
                break
        self.ids.add(id_number)
        return Person(id_number, name or self.name(male), birth, county)

    def _region_code(self, county: str, year: int, *, newer: bool) -> str:
        codes = _REGION_CODES[county]
        if newer:
            # A code created after the birth: the number was issued later.
            return self.rng.choice([code for code, start, _ in codes if start > year])
        return self.rng.choice([c for c, start, end in codes if start <= year <= end])

    def name(self, male: bool) -> str:
        surname = self.rng.choices(_SURNAMES, weights=_SURNAME_WEIGHTS)[0]
        return surname + self.rng.choice(_MALE_GIVEN if male else _FEMALE_GIVEN)

    # Accounts.

    def account(
        self,
        bank: str = "",
        kind: str = "",
        *,
        luhn: bool = True,
    ) -> Account:
        rng = self.rng
        bank = bank or rng.choices([b[0] for b in _BANKS], weights=_BANK_WEIGHTS)[0]
        kind = (
            kind
            or rng.choices(
                (_SOCIAL_SECURITY_CARD, _BANK_CARD, _PASSBOOK), weights=(6, 3, 1)
            )[0]
        )
        while True:
            if kind == _PASSBOOK:
                number = "1" + _digits(rng, rng.choice((17, 18, 19)))
            else:
                partial = _CARD_PREFIXES[bank] + _digits(rng, 12)
                check = luhn_check_digit(partial)
                if not luhn:
                    check = str((int(check) + rng.randint(1, 9)) % 10)
                number = partial + check
            if number not in self.numbers:
                self.numbers.add(number)
                return Account(bank, number, kind)

    def card_typo(self, number: str) -> str:
        """A one-digit slip in a card number; Luhn always catches it."""
        while True:
            position = self.rng.randrange(6, len(number))
            digit = str((int(number[position]) + self.rng.randint(1, 9)) % 10)
            typo = number[:position] + digit + number[position + 1 :]
            if typo not in self.numbers:
                self.numbers.add(typo)
                return typo

    # Registry, ledgers and lists.

    def register(
        self,
        person: Person,
        account: Account,
        *,
        proxy: Person | None = None,
        status: str = _NORMAL,
        at_payment: str = _NORMAL,
    ) -> RegistryEntry:
        entry = RegistryEntry(person, account, proxy)
        self.registry[person.id_number] = entry
        self.open_account(account, entry.holder, status=status, at_payment=at_payment)
        return entry

    def open_account(
        self,
        account: Account,
        holder: Person,
        *,
        status: str = _NORMAL,
        at_payment: str = _NORMAL,
    ) -> None:
        self.ledgers[account.bank][account.number] = LedgerEntry(
            account.number, holder.name, holder.id_number, status, at_payment
        )

    def list_add(self, list_name: str, person: Person) -> None:
        if list_name:
            self.lists[list_name][person.id_number] = None


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _count(at_scale_one: int, scale: float) -> int:
    return max(1, round(at_scale_one * scale)) if at_scale_one else 0


# --------------------------------------------------------------------------
# Records: amounts per department, and the record for a registry entry.


def _amount_fields(spec: _FileSpec, rng: random.Random) -> dict[str, str]:
    if spec.style == "cropland":
        if rng.random() < 0.05:
            area = Decimal(rng.randint(1, 12))
        else:
            area = Decimal(rng.randint(5, 150)) / 10
        return {"area": str(area), "amount": f"{area * _CROPLAND_RATE:.2f}"}
    if spec.style == "living":
        household = rng.choice((1, 1, 2, 2, 3, 4))
        amount = household * rng.choice(_LIVING_PER_HEAD)
        return {"household": str(household), "amount": f"{amount:.2f}"}
    if spec.style == "family":
        return {"amount": f"{_FAMILY_AMOUNT:.2f}"}
    return {"amount": f"{_DISABILITY_AMOUNT:.2f}"}


def _record(
    world: _World, spec: _FileSpec, entry: RegistryEntry, kind: str = "clean"
) -> Record:
    proxy = entry.proxy if spec.proxy_columns else None
    return Record(
        name=entry.person.name,
        id_number=entry.person.id_number,
        bank_name=_BANK_NAMES[entry.account.bank],
        account=entry.account.number,
        proxy_name=proxy.name if proxy else "",
        proxy_id_number=proxy.id_number if proxy else "",
        kind=kind,
        **_amount_fields(spec, world.rng),
    )


def _enrol(
    world: _World,
    spec: _FileSpec,
    *,
    born: tuple[int, int] | None = None,
    bank: str = "",
    kind: str = "",
    luhn: bool = True,
    status: str = _NORMAL,
    at_payment: str = _NORMAL,
    newer_code: bool = False,
    name: str = "",
    eligible: bool = True,
) -> RegistryEntry:
    """A new person of the file's county, registered with a new account."""
    person = world.person(
        spec.county, born or spec.born, newer_code=newer_code, name=name
    )
    account = world.account(bank, kind, luhn=luhn)
    entry = world.register(person, account, status=status, at_payment=at_payment)
    if eligible:
        world.list_add(spec.requires_list, person)
    return entry


def _clean(world: _World, spec: _FileSpec, reusable: list[RegistryEntry]) -> Record:
    if reusable and world.rng.random() < spec.reuse:
        entry = reusable.pop()
        world.list_add(spec.requires_list, entry.person)
        return _record(world, spec, entry)
    entry = _enrol(world, spec)
    world.pool[spec.county].append(entry)
    return _record(world, spec, entry)


# --------------------------------------------------------------------------
# Planters: one per kind, each making one record with one problem (or one
# look-alike that is not a problem) and the registry, ledger and list entries
# that make it so. Each uses a new person, so problems never stack.

_Planter = Callable[[_World, _FileSpec], Record]
_ELDERLY = (1930, 1950)
_WORKING_AGE = (1965, 1995)


def _plant_proxy(world: _World, spec: _FileSpec) -> Record:
    person = world.person(spec.county, _ELDERLY)
    proxy = world.person(spec.county, (1955, 1990))
    entry = world.register(person, world.account(), proxy=proxy)
    world.list_add(spec.requires_list, person)
    if world.rng.random() < 0.5:
        # The person's own card, which is not the one-card account.
        world.open_account(world.account(), person)
    return _record(world, spec, entry, "proxy")


def _plant_registered_card_fails_luhn(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec, kind=_SOCIAL_SECURITY_CARD, luhn=False)
    return _record(world, spec, entry, "registered_card_fails_luhn")


def _plant_elderly_new_region_code(world: _World, spec: _FileSpec) -> Record:
    born = (max(spec.born[0], _ELDERLY[0]), min(spec.born[1], _ELDERLY[1]))
    entry = _enrol(world, spec, born=born, newer_code=True)
    return _record(world, spec, entry, "elderly_new_region_code")


def _plant_listed_not_excluded(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec, born=_WORKING_AGE)
    world.list_add("public-servants", entry.person)
    return _record(world, spec, entry, "listed_not_excluded")


def _plant_name_with_middle_dot(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec, name=world.rng.choice(_MIDDLE_DOT_NAMES))
    return _record(world, spec, entry, "name_with_middle_dot")


def _plant_id_check_digit(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec)
    id_number = entry.person.id_number
    while True:
        # A slip in the sequence digits: the date stays real, the check fails.
        position = world.rng.randrange(14, 17)
        digit = str((int(id_number[position]) + world.rng.randint(1, 9)) % 10)
        typo = id_number[:position] + digit + id_number[position + 1 :]
        if typo not in world.ids:
            world.ids.add(typo)
            break
    return replace(_record(world, spec, entry, "id_check_digit"), id_number=typo)


def _plant_id_birth_date(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec)
    id_number = entry.person.id_number
    year = id_number[6:10]
    month_day = world.rng.choice(("1307", "0230", "0431", "0631", "0900", "1232"))
    first17 = id_number[:6] + year + month_day + id_number[14:17]
    impossible = first17 + id_check_digit(first17)
    world.ids.add(impossible)
    record = _record(world, spec, entry, "id_birth_date")
    return replace(record, id_number=impossible)


def _plant_amount_over_limit(world: _World, spec: _FileSpec) -> Record:
    record = _record(world, spec, _enrol(world, spec), "amount_over_limit")
    if spec.style == "cropland":
        area = Decimal(250)
        amount = f"{area * _CROPLAND_RATE:.2f}"
        return replace(record, area=str(area), amount=amount)
    return replace(record, amount=_OVER_LIMIT[spec.style])


def _plant_amount_zero(world: _World, spec: _FileSpec) -> Record:
    record = _record(world, spec, _enrol(world, spec), "amount_zero")
    area = "0" if spec.style == "cropland" else ""
    return replace(record, area=area, amount="0.00")


def _plant_amount_negative(world: _World, spec: _FileSpec) -> Record:
    record = _record(world, spec, _enrol(world, spec), "amount_negative")
    return replace(record, amount="-" + record.amount)


def _plant_amount_not_number(world: _World, spec: _FileSpec) -> Record:
    record = _record(world, spec, _enrol(world, spec), "amount_not_number")
    return replace(record, amount=world.rng.choice(_NOT_NUMBERS))


def _plant_deceased(world: _World, spec: _FileSpec) -> Record:
    born = (max(spec.born[0], _ELDERLY[0]), min(spec.born[1], 1960))
    entry = _enrol(world, spec, born=born)
    world.list_add("deceased", entry.person)
    return _record(world, spec, entry, "deceased")


def _plant_not_on_required_list(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec, eligible=False)
    return _record(world, spec, entry, "not_on_required_list")


def _plant_on_excluded_list(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec, born=_WORKING_AGE)
    world.list_add("public-servants", entry.person)
    return _record(world, spec, entry, "on_excluded_list")


def _plant_card_fails_luhn(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec, kind=_BANK_CARD)
    typo = world.card_typo(entry.account.number)
    return replace(_record(world, spec, entry, "card_fails_luhn"), account=typo)


def _plant_other_account(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec)
    other = world.account(kind=_BANK_CARD)
    world.open_account(other, entry.person)
    record = _record(world, spec, entry, "other_account")
    return replace(record, bank_name=_BANK_NAMES[other.bank], account=other.number)


def _plant_not_in_registry(world: _World, spec: _FileSpec) -> Record:
    person = world.person(spec.county, spec.born)
    world.list_add(spec.requires_list, person)
    account = world.account(kind=_BANK_CARD)
    world.open_account(account, person)
    entry = RegistryEntry(person, account)  # what the file says; not registered
    return _record(world, spec, entry, "not_in_registry")


def _plant_account_unknown_to_bank(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec)
    # A well-formed card number that no bank has issued.
    unknown = world.account(entry.account.bank, _BANK_CARD)
    record = _record(world, spec, entry, "account_unknown_to_bank")
    return replace(record, account=unknown.number)


def _plant_proxy_not_registered(world: _World, spec: _FileSpec) -> Record:
    person = world.person(spec.county, _ELDERLY)
    proxy = world.person(spec.county, (1955, 1990))
    entry = world.register(person, world.account(), proxy=proxy)
    world.list_add(spec.requires_list, person)
    stranger = world.person(spec.county, (1955, 1990))
    record = _record(world, spec, entry, "proxy_not_registered")
    return replace(record, proxy_name=stranger.name, proxy_id_number=stranger.id_number)


def _plant_account_closed(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec, status=_CLOSED, at_payment=_CLOSED)
    return _record(world, spec, entry, "account_closed")


def _plant_account_frozen(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec, status=_FROZEN, at_payment=_FROZEN)
    return _record(world, spec, entry, "account_frozen")


def _plant_holder_name_mismatch(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec)
    world.open_account(
        entry.account, replace(entry.person, name=_misspell(entry.person.name))
    )
    return _record(world, spec, entry, "holder_name_mismatch")


def _misspell(name: str) -> str:
    last = name[-1]
    return name[:-1] + _SIMILAR_CHARS[last] if last in _SIMILAR_CHARS else name + "华"


def _plant_holder_id_mismatch(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec)
    someone = world.person(spec.county, (1960, 2000))
    world.open_account(
        entry.account, replace(entry.person, id_number=someone.id_number)
    )
    return _record(world, spec, entry, "holder_id_mismatch")


def _plant_frozen_after_verify(world: _World, spec: _FileSpec) -> Record:
    entry = _enrol(world, spec, at_payment=_FROZEN)
    return _record(world, spec, entry, "frozen_after_verify")


def _plant_returned_after_payment(world: _World, spec: _FileSpec) -> Record:
    # Only a cross-bank credit can come back: the agent bank pays its own
    # customers directly.
    banks = [b[0] for b in _BANKS if b[0] != spec.agent_bank]
    bank = world.rng.choice(banks)
    entry = _enrol(world, spec, bank=bank, at_payment=_RETURNED)
    return _record(world, spec, entry, "returned_after_payment")


_PLANTERS: dict[str, _Planter] = {
    "proxy": _plant_proxy,
    "registered_card_fails_luhn": _plant_registered_card_fails_luhn,
    "elderly_new_region_code": _plant_elderly_new_region_code,
    "listed_not_excluded": _plant_listed_not_excluded,
    "name_with_middle_dot": _plant_name_with_middle_dot,
    "id_check_digit": _plant_id_check_digit,
    "id_birth_date": _plant_id_birth_date,
    "amount_over_limit": _plant_amount_over_limit,
    "amount_zero": _plant_amount_zero,
    "amount_negative": _plant_amount_negative,
    "amount_not_number": _plant_amount_not_number,
    "deceased": _plant_deceased,
    "not_on_required_list": _plant_not_on_required_list,
    "on_excluded_list": _plant_on_excluded_list,
    "card_fails_luhn": _plant_card_fails_luhn,
    "other_account": _plant_other_account,
    "not_in_registry": _plant_not_in_registry,
    "account_unknown_to_bank": _plant_account_unknown_to_bank,
    "proxy_not_registered": _plant_proxy_not_registered,
    "account_closed": _plant_account_closed,
    "account_frozen": _plant_account_frozen,
    "holder_name_mismatch": _plant_holder_name_mismatch,
    "holder_id_mismatch": _plant_holder_id_mismatch,
    "frozen_after_verify": _plant_frozen_after_verify,
    "returned_after_payment": _plant_returned_after_payment,
}
_COPIES = ("duplicate_in_batch", "duplicate_paid")


# --------------------------------------------------------------------------
# Building the data set.


def build(*, seed: int = 2026, scale: float = 1.0) -> SampleSet:
    """The whole data set in memory; ``generate`` writes it out."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    world = _World(seed)
    for spec in _SPECS:
        world.batches[spec.file] = _build_batch(world, spec, scale)
    _add_bystanders(world, scale)
    return _finish(world)


def _build_batch(world: _World, spec: _FileSpec, scale: float) -> list[Record]:
    rng = world.rng
    counts = {kind: _count(n, scale) for kind, n in spec.plants}

    # 1. The planted records, each with its own new person.
    planted = [
        _PLANTERS[kind](world, spec)
        for kind, n in counts.items()
        if kind not in _COPIES
        for _ in range(n)
    ]

    # 2. Clean records fill the file to its size.
    copies = sum(counts.get(kind, 0) for kind in _COPIES)
    dups = counts.get("duplicate_in_batch", 0)
    size = round(spec.size * scale)
    reusable = [
        entry
        for entry in world.pool[spec.county]
        if spec.born[0] <= entry.person.birth.year <= spec.born[1]
    ]
    rng.shuffle(reusable)
    clean_count = max(size - len(planted) - copies, dups + 3)
    records = [_clean(world, spec, reusable) for _ in range(clean_count)]

    # 3. The planted records go in at random places.
    for record in planted:
        records.insert(rng.randint(0, len(records)), record)

    # 4. A person listed twice: the later copy is the duplicate.
    for original in rng.sample([r for r in records if r.kind == "clean"], dups):
        first = next(i for i, r in enumerate(records) if r is original)
        copy = replace(original, kind="duplicate_in_batch")
        records.insert(rng.randint(first + 1, len(records)), copy)

    # 5. People already in an earlier file for the same policy and period.
    if spec.repeats:
        earlier = [r for r in world.batches[spec.repeats] if r.kind == "clean"]
        for original in rng.sample(earlier, counts["duplicate_paid"]):
            copy = replace(original, kind="duplicate_paid")
            records.insert(rng.randint(0, len(records)), copy)
    return records


def _add_bystanders(world: _World, scale: float) -> None:
    """People in no department file: registry, ledgers and lists only."""
    rng = world.rng
    bystanders: list[Person] = []
    for county, share in _BYSTANDER_COUNTIES:
        for _ in range(round(_BYSTANDERS * scale * share)):
            person = world.person(county, (1935, 2008))
            world.register(person, world.account())
            bystanders.append(person)

    # Reference lists name more people than the files do.
    extras = (
        ("deceased", _EXTRA_DECEASED),
        ("public-servants", _EXTRA_PUBLIC_SERVANTS),
        ("disabled", _EXTRA_DISABLED),
    )
    for list_name, at_scale_one in extras:
        chosen = rng.sample(
            bystanders, min(len(bystanders), _count(at_scale_one, scale))
        )
        for person in chosen:
            world.list_add(list_name, person)
    for entry in world.registry.values():
        if rng.random() < _POVERTY_SHARE:
            world.list_add("poverty-registered", entry.person)

    # Some people hold a second card, which is not their one-card account.
    for entry in list(world.registry.values()):
        if rng.random() < _SECOND_ACCOUNT_SHARE:
            world.open_account(world.account(kind=_BANK_CARD), entry.person)


def _finish(world: _World) -> SampleSet:
    rng = world.rng
    registry = list(world.registry.values())
    rng.shuffle(registry)
    ledgers: dict[str, list[LedgerEntry]] = {}
    for bank, entries in world.ledgers.items():
        ledgers[bank] = list(entries.values())
        rng.shuffle(ledgers[bank])
    lists = {name: sorted(ids) for name, ids in world.lists.items()}
    return SampleSet(registry, ledgers, lists, dict(world.batches))


# --------------------------------------------------------------------------
# Writing: one function per kind of file.


def generate(out: Path, *, seed: int = 2026, scale: float = 1.0) -> Path:
    """Write the data set under ``out`` and return ``out``.

    ``scale=1.0`` gives about 6,000 department records; tests use ~0.05.
    """
    data = build(seed=seed, scale=scale)
    out = Path(out)
    for folder in ("registry", "lists", "banks", "batches"):
        (out / folder).mkdir(parents=True, exist_ok=True)

    _write_reference(out)
    _write_registry(out / "registry" / "accounts.csv", data.registry)
    for name in LIST_NAMES:
        _write_csv(
            out / "lists" / f"{name}.csv", ("id_number",), _rows(data.lists[name])
        )
    for bank, ledger in data.ledgers.items():
        _write_ledger(out / "banks" / f"{bank}.csv", ledger)
    for spec in _SPECS:
        _write_batch(out / "batches" / spec.file, spec, data.batches[spec.file])
    _write_expected(out / EXPECTED_OUTCOMES, data.batches)
    _write_readme(out / "README.md", seed, scale)
    return out


def _rows(values: Iterable[str]) -> list[tuple[str, ...]]:
    return [(value,) for value in values]


def _write_csv(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    encoding: str = "utf-8",
) -> None:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _write_reference(out: Path) -> None:
    _write_csv(out / "policies.csv", _POLICY_HEADER, _POLICIES)
    _write_csv(out / "agent-banks.csv", _AGENT_BANK_HEADER, _AGENT_BANKS)
    _write_csv(out / "banks.csv", _BANK_HEADER, _BANKS)
    _write_csv(out / "batches" / "manifest.csv", _MANIFEST_HEADER, _MANIFEST)


def _write_registry(path: Path, registry: list[RegistryEntry]) -> None:
    header = (
        "id_number",
        "name",
        "bank",
        "account",
        "account_kind",
        "proxy_name",
        "proxy_id_number",
    )
    rows = [
        (
            e.person.id_number,
            e.person.name,
            e.account.bank,
            e.account.number,
            e.account.kind,
            e.proxy.name if e.proxy else "",
            e.proxy.id_number if e.proxy else "",
        )
        for e in registry
    ]
    _write_csv(path, header, rows)


def _write_ledger(path: Path, ledger: list[LedgerEntry]) -> None:
    header = (
        "account",
        "holder_name",
        "holder_id_number",
        "status",
        "status_at_payment",
    )
    rows = [
        (e.account, e.holder_name, e.holder_id_number, e.status, e.status_at_payment)
        for e in ledger
    ]
    _write_csv(path, header, rows)


def _write_expected(path: Path, batches: dict[str, list[Record]]) -> None:
    rows = [
        (file, row, record.outcome, record.reasons)
        for file, records in batches.items()
        for row, record in enumerate(records, 1)
    ]
    _write_csv(path, ("file", "row", "outcome", "reasons"), rows)


def _write_readme(path: Path, seed: int, scale: float) -> None:
    path.write_text(
        "# Generated sample data set\n\n"
        f"Written by `gateway.samplegen.generate` (seed {seed}, scale {scale}).\n"
        "Every name, ID number and account in it is invented. The layout is that\n"
        "of the shared `samples/` set; the module docstring of\n"
        "`gateway/samplegen.py` lists what is planted.\n\n"
        f"`{EXPECTED_OUTCOMES}` is extra: for every record of every department\n"
        "file, the outcome and primary reason the whole flow should give.\n",
        encoding="utf-8",
    )


# The department files. Header names and encodings are each department's own.


def _header(line: str) -> tuple[str, ...]:
    return tuple(line.split(","))


_CROPLAND_HEADER = _header(
    "序号,姓名,身份证号码,承包面积（亩）,补贴标准（元/亩）,补贴金额（元）,"
    "开户银行,一卡通账号,代领人姓名,代领人身份证号码,备注"
)
_LIVING_HEADER = _header(
    "序号,姓名,身份证号,保障人数,月保障金额(元),开户行,银行账号,备注"
)
_FAMILY_HEADER = _header("序号,姓名,身份证号码,补助金额,开户银行,银行账号")
_DISABILITY_HEADER = _header("序号,姓名,身份证号码,补贴金额（元）,开户银行,一卡通账号")


def _write_batch(path: Path, spec: _FileSpec, records: list[Record]) -> None:
    rows: list[tuple[object, ...]]
    if path.suffix == ".xlsx":
        _write_cropland_xlsx(path, spec, records)
    elif spec.style == "cropland":
        rows = [
            (
                i,
                r.name,
                r.id_number,
                r.area,
                f"{_CROPLAND_RATE:.2f}",
                r.amount,
                r.bank_name,
                r.account,
                r.proxy_name,
                r.proxy_id_number,
                "",
            )
            for i, r in enumerate(records, 1)
        ]
        _write_csv(path, _CROPLAND_HEADER, rows, encoding="utf-8-sig")
    elif spec.style == "living":
        rows = [
            (i, r.name, r.id_number, r.household, r.amount, r.bank_name, r.account, "")
            for i, r in enumerate(records, 1)
        ]
        _write_csv(path, _LIVING_HEADER, rows, encoding="gbk")
    else:
        header = _FAMILY_HEADER if spec.style == "family" else _DISABILITY_HEADER
        rows = [
            (i, r.name, r.id_number, r.amount, r.bank_name, r.account)
            for i, r in enumerate(records, 1)
        ]
        _write_csv(path, header, rows)


# Pinned so that the same seed gives the same .xlsx bytes.
_XLSX_STAMP = datetime(2026, 1, 5, 9, 0, 0)
_TEXT_COLUMNS = (3, 8, 10)  # ID number, account, proxy's ID number


def _write_cropland_xlsx(path: Path, spec: _FileSpec, records: list[Record]) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "发放清册"
    width = len(_CROPLAND_HEADER)

    # 1. A title row merged across the table, then the header.
    policy_name = _policy(spec.policy)[1]
    county_name = _COUNTY_NAMES[spec.county]
    sheet.append([f"重庆市{county_name}{spec.period}年{policy_name}资金发放清册"])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    sheet.append(list(_CROPLAND_HEADER))

    # 2. The records; ID numbers and accounts are text, as they must be.
    total = Decimal(0)
    for i, r in enumerate(records, 1):
        amount = _number(r.amount)
        if not isinstance(amount, str):
            total += Decimal(r.amount)
        sheet.append(
            [
                i,
                r.name,
                r.id_number,
                _number(r.area),
                float(_CROPLAND_RATE),
                amount,
                r.bank_name,
                r.account,
                r.proxy_name or None,
                r.proxy_id_number or None,
                None,
            ]
        )
        for column in _TEXT_COLUMNS:
            sheet.cell(row=i + 2, column=column).number_format = "@"

    # 3. The 合计 row under the amounts.
    sheet.append(["合计", None, None, None, None, float(total)])
    for column in range(1, width + 1):
        sheet.column_dimensions[get_column_letter(column)].width = 13

    buffer = io.BytesIO()
    workbook.properties.created = _XLSX_STAMP
    workbook.save(buffer)
    path.write_bytes(_pin_zip(buffer.getvalue()))


def _number(text: str) -> float | int | str | None:
    """A numeric cell for a well-formed number, the text as written otherwise."""
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    if "." in text:
        return float(value)
    return int(value)


def _pin_zip(raw: bytes) -> bytes:
    """The same workbook with fixed zip timestamps and a fixed modified date."""
    stamp = _XLSX_STAMP.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    source = zipfile.ZipFile(io.BytesIO(raw))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, data
                )
            pinned = zipfile.ZipInfo(
                info.filename, date_time=_XLSX_STAMP.timetuple()[:6]
            )
            pinned.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(pinned, data)
    return buffer.getvalue()


# --------------------------------------------------------------------------
# One large, clean batch for the benchmark (``ykt bench``).

BENCH_FILE = "bench.csv"


def write_bench_set(out: Path, records: int, *, seed: int = 2026) -> Path:
    """A reference set and one department file of ``records`` clean records.

    Everyone is registered, with a normal account, so every record should be
    paid: the benchmark measures the full path, not the refusals. Written
    row by row; only the sets that keep ID and account numbers unique grow
    with ``records``.
    """
    world = _World(seed)
    out = Path(out)
    for folder in ("registry", "lists", "banks", "batches"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    _write_reference(out)
    for name in LIST_NAMES:
        _write_csv(out / "lists" / f"{name}.csv", ("id_number",), [])

    ledgers = {
        bank: (out / "banks" / f"{bank}.csv").open("w", newline="", encoding="utf-8")
        for bank, _, _ in _BANKS
    }
    writers = {bank: csv.writer(handle) for bank, handle in ledgers.items()}
    for writer in writers.values():
        writer.writerow(
            (
                "account",
                "holder_name",
                "holder_id_number",
                "status",
                "status_at_payment",
            )
        )
    with (
        (out / "registry" / "accounts.csv").open(
            "w", newline="", encoding="utf-8"
        ) as registry_file,
        (out / "batches" / BENCH_FILE).open(
            "w", newline="", encoding="utf-8"
        ) as batch_file,
    ):
        registry = csv.writer(registry_file)
        registry.writerow(
            (
                "id_number",
                "name",
                "bank",
                "account",
                "account_kind",
                "proxy_name",
                "proxy_id_number",
            )
        )
        batch = csv.writer(batch_file)
        batch.writerow(_FAMILY_HEADER)
        for row in range(1, records + 1):
            person = world.person("500154", _WORKING_AGE)
            account = world.account()
            registry.writerow(
                (
                    person.id_number,
                    person.name,
                    account.bank,
                    account.number,
                    account.kind,
                    "",
                    "",
                )
            )
            writers[account.bank].writerow(
                (account.number, person.name, person.id_number, _NORMAL, _NORMAL)
            )
            fen = world.rng.randint(5000, 150000)
            amount = f"{fen // 100}.{fen % 100:02d}"
            batch.writerow(
                (
                    row,
                    person.name,
                    person.id_number,
                    amount,
                    _BANK_NAMES[account.bank],
                    account.number,
                )
            )
    for handle in ledgers.values():
        handle.close()
    return out / "batches" / BENCH_FILE
