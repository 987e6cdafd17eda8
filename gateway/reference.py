"""Importing reference data: the policy list, agent banks, registry and lists.

Files follow the layout described in docs/data-layout.md (``policies.csv``,
``banks.csv``, ``agent-banks.csv``, ``registry/accounts.csv``,
``lists/<name>.csv``). ID numbers and account numbers are turned into keyed
digests on the way in; the store never sees them in clear.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, Engine, Table, delete, insert, select

from gateway.normalize import normalize_account, normalize_id_number
from gateway.rules import PolicyRules
from gateway.sealing import Tokenizer
from gateway.store import schema

_logger = logging.getLogger(__name__)

BATCH = 5000


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        yield from csv.DictReader(handle)


def _policy(r: dict[str, str]) -> dict[str, object]:
    return {
        "policy_code": r["policy_code"],
        "policy_name": r["policy_name"],
        "department": r["department"],
        "department_name": r["department_name"],
        "period_kind": r["period"],
        "max_amount_fen": int(Decimal(r["max_amount_yuan"]) * 100),
        "requires_list": r["requires_list"] or None,
        "excludes_list": r["excludes_list"] or None,
    }


def _bank(r: dict[str, str]) -> dict[str, object]:
    return {
        "bank_code": r["bank"],
        "bank_name": r["bank_name"],
        "card_prefix": r["card_prefix"],
    }


def _agent_bank(r: dict[str, str]) -> dict[str, object]:
    return {
        "county": r["county"],
        "policy_code": r["policy_code"],
        "bank_code": r["agent_bank"],
        "connector": r["connector"],
    }


# Small tables are replaced whole from their file.
_SMALL_TABLES: tuple[
    tuple[str, Table, Callable[[dict[str, str]], dict[str, object]]], ...
] = (
    ("policies.csv", schema.policies, _policy),
    ("banks.csv", schema.banks, _bank),
    ("agent-banks.csv", schema.agent_banks, _agent_bank),
)


def import_reference(
    engine: Engine, tokenizer: Tokenizer, directory: Path
) -> dict[str, int]:
    """Load every reference file found under ``directory``; return counts."""
    counts: dict[str, int] = {}
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        for name, table, convert in _SMALL_TABLES:
            path = directory / name
            if path.exists():
                rows = [convert(r) for r in _rows(path)]
                connection.execute(delete(table))
                connection.execute(insert(table), rows)
                counts[table.name] = len(rows)

        registry = directory / "registry" / "accounts.csv"
        if registry.exists():
            counts["registry"] = _import_registry(connection, tokenizer, registry, now)
        for path in sorted((directory / "lists").glob("*.csv")):
            counts[f"list:{path.stem}"] = _import_list(connection, tokenizer, path)
    _logger.info("reference data imported", extra={"counts": counts})
    return counts


def _import_registry(
    connection: Connection, tokenizer: Tokenizer, path: Path, now: dt.datetime
) -> int:
    table = schema.registry_accounts
    known = set(connection.execute(select(table.c.person_digest)).scalars())
    batch: list[dict[str, object]] = []
    count = 0
    for row in _rows(path):
        person = tokenizer.person(normalize_id_number(row["id_number"]))
        if person in known:
            continue
        known.add(person)
        proxy_id = row.get("proxy_id_number") or ""
        batch.append(
            {
                "person_digest": person,
                "bank_code": row["bank"],
                "account_digest": tokenizer.account(normalize_account(row["account"])),
                "account_kind": row["account_kind"],
                "proxy_person_digest": (
                    tokenizer.person(normalize_id_number(proxy_id))
                    if proxy_id
                    else None
                ),
                "registered_at": now,
            }
        )
        if len(batch) >= BATCH:
            connection.execute(insert(table), batch)
            count += len(batch)
            batch = []
    if batch:
        connection.execute(insert(table), batch)
        count += len(batch)
    return count


def _import_list(connection: Connection, tokenizer: Tokenizer, path: Path) -> int:
    table = schema.reference_lists
    name = path.stem
    known = set(
        connection.execute(
            select(table.c.person_digest).where(table.c.list_name == name)
        ).scalars()
    )
    digests = {
        tokenizer.person(normalize_id_number(r["id_number"])) for r in _rows(path)
    }
    new = [{"list_name": name, "person_digest": d} for d in digests - known]
    if new:
        connection.execute(insert(table), new)
    return len(new)


def policy_rules(policies_csv: Path, policy_code: str) -> PolicyRules | None:
    """One policy of a policy-list CSV, as the rules need it; None if absent."""
    for row in _rows(policies_csv):
        if row["policy_code"] == policy_code:
            values = _policy(row)
            return PolicyRules(
                policy_code=policy_code,
                max_amount_fen=int(str(values["max_amount_fen"])),
                requires_list=row["requires_list"] or None,
                excludes_list=row["excludes_list"] or None,
            )
    return None
