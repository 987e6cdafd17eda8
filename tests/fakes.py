"""Fictional people, accounts and reference files for tests.

Every value here is generated: ID numbers carry a correct GB 11643 check digit,
card numbers a correct Luhn digit. Nothing is read from outside the repository.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CHECK = "10X98765432"
SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"


def id_check_char(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def make_id(rng: random.Random, region: str = "500154") -> str:
    first17 = (
        f"{region}{rng.randint(1940, 2004)}{rng.randint(1, 12):02d}"
        f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    )
    return first17 + id_check_char(first17)


def luhn_complete(partial: str) -> str:
    total = 0
    for i, digit in enumerate(reversed(partial)):
        d = int(digit)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return partial + str((10 - total % 10) % 10)


def make_card(rng: random.Random, prefix: str = "621459") -> str:
    return luhn_complete(prefix + "".join(str(rng.randint(0, 9)) for _ in range(12)))


def make_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(
        rng.choice(GIVEN) for _ in range(rng.randint(1, 2))
    )


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str
    account: str


def people(count: int, seed: int = 7) -> list[Person]:
    rng = random.Random(seed)
    return [Person(make_name(rng), make_id(rng), make_card(rng)) for _ in range(count)]


def write_reference(
    directory: Path,
    persons: list[Person],
    *,
    bank: str = "CQRCB",
    connector: str = "grpc-pull",
) -> None:
    """A minimal reference set in the samples layout: one county, one policy."""
    directory.mkdir(parents=True, exist_ok=True)
    _write(
        directory / "policies.csv",
        [
            "policy_code",
            "policy_name",
            "department",
            "department_name",
            "period",
            "max_amount_yuan",
            "requires_list",
            "excludes_list",
        ],
        [
            [
                "CQ-NY-001",
                "耕地地力保护补贴",
                "NYNC",
                "农业农村委员会",
                "year",
                "20000.00",
                "",
                "",
            ]
        ],
    )
    _write(
        directory / "banks.csv",
        ["bank", "bank_name", "card_prefix"],
        [[bank, "重庆农村商业银行", "621459"]],
    )
    _write(
        directory / "agent-banks.csv",
        ["county", "county_name", "policy_code", "agent_bank", "connector"],
        [["500154", "开州区", "CQ-NY-001", bank, connector]],
    )
    _write(
        directory / "registry" / "accounts.csv",
        [
            "id_number",
            "name",
            "bank",
            "account",
            "account_kind",
            "proxy_name",
            "proxy_id_number",
        ],
        [[p.id_number, p.name, bank, p.account, "社保卡", "", ""] for p in persons],
    )
    _write(directory / "lists" / "deceased.csv", ["id_number"], [])
    _write(
        directory / "banks" / f"{bank}.csv",
        ["account", "holder_name", "holder_id_number", "status", "status_at_payment"],
        [[p.account, p.name, p.id_number, "NORMAL", "NORMAL"] for p in persons],
    )


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
