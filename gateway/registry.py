"""The one-card account registry (Art. 10-14): declare, review, confirm.

An implementing unit declares the account a beneficiary chose, new or
changed; the same unit reviews the declaration; the county finance bureau
confirms it. Only a confirmed declaration changes the registry, and every
step is recorded with who took it and when (``declaration_steps``, which
the database keeps append-only).

Invariants and the threats they answer:
  * One person, one account (Art. 10): the registry holds one row per person;
    a confirmed change replaces it, and the declaration that did so stays.
  * No one can point a person at a bank the person did not choose. A
    declaration names the bank and carries the number of the beneficiary's
    own signed application form, which records that choice. A card account
    must carry that bank's card prefix, so a declared bank and a card of
    another bank cannot be combined. Confirmation takes the declaration as
    it stands: finance may confirm or refuse it, never alter it. Agent banks
    and departments cannot declare at all.
  * Four steps, three roles: a unit declares and reviews only within its own
    organisation, finance confirms only within its own county, and a
    declaration moves DECLARED -> REVIEWED -> CONFIRMED, or to REFUSED.
    While a person has an open declaration, a second one is refused, so two
    changes cannot race.
  * Personal data: the registry and the declarations hold keyed digests
    only. Errors say which field is wrong, never its value.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from gateway import audit
from gateway.core import GatewayCore
from gateway.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionError,
)
from gateway.normalize import (
    account_well_formed,
    check_id_number,
    id_number_looks_numeric,
    name_valid,
    normalize_account,
    normalize_id_number,
    normalize_name,
)
from gateway.rules import PASSBOOK_KIND
from gateway.store import schema
from keys.identity import Identity, Role
from ykt.v1 import registry_pb2

ACCOUNT_KINDS = frozenset({"社保卡", "银行卡", PASSBOOK_KIND})
_COUNTY_ORG = re.compile(r"^([0-9]{6})(?:-|$)")
# A paper reference (an application form, a treasury voucher): no personal data.
REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,63}$")

DECLARED = "DECLARED"
REVIEWED = "REVIEWED"
CONFIRMED = "CONFIRMED"
REFUSED = "REFUSED"
_OPEN_STATES = (DECLARED, REVIEWED)
_PROTO_STATES = {
    DECLARED: registry_pb2.DECLARATION_STATE_DECLARED,
    REVIEWED: registry_pb2.DECLARATION_STATE_REVIEWED,
    CONFIRMED: registry_pb2.DECLARATION_STATE_CONFIRMED,
    REFUSED: registry_pb2.DECLARATION_STATE_REFUSED,
}


@dataclass(frozen=True)
class _Checked:
    person: bytes
    account: bytes
    proxy: bytes | None


def county_of(identity: Identity) -> str:
    """The county code an organisation belongs to: ``500154`` or ``500154-...``."""
    match = _COUNTY_ORG.match(identity.org)
    if match is None:
        raise PermissionDeniedError("the organisation belongs to no county")
    return match.group(1)


def declare(
    core: GatewayCore, caller: Identity, declaration: registry_pb2.AccountDeclaration
) -> registry_pb2.DeclarationSummary:
    """A unit declares a beneficiary's chosen account; nothing changes yet."""
    if caller.role is not Role.UNIT:
        raise PermissionDeniedError("only an implementing unit declares accounts")
    county = county_of(caller)
    now = core.now()
    declaration_id = f"D{now:%Y%m%d}-{secrets.token_hex(8)}"

    with core.engine.begin() as connection:
        checked = _check(core, connection, declaration, now.date())
        registry = schema.registry_accounts
        current = connection.execute(
            select(registry.c.person_digest).where(
                registry.c.person_digest == checked.person
            )
        ).one_or_none()
        table = schema.registry_declarations
        open_count = connection.execute(
            select(func.count()).where(
                table.c.person_digest == checked.person,
                table.c.state.in_(_OPEN_STATES),
            )
        ).scalar_one()
        if open_count:
            raise ConflictError("the person already has an open declaration")
        connection.execute(
            insert(table).values(
                declaration_id=declaration_id,
                county=county,
                person_digest=checked.person,
                bank_code=declaration.bank_code,
                account_digest=checked.account,
                account_kind=declaration.account_kind,
                proxy_person_digest=checked.proxy,
                application_reference=declaration.application_reference,
                changes_registered_account=current is not None,
                declared_by=caller.org,
                declared_at=now,
                state=DECLARED,
            )
        )
        _add_step(connection, declaration_id, DECLARED, caller, now, "")
        return _summary(connection, declaration_id)


def review(
    core: GatewayCore, caller: Identity, declaration_id: str, approve: bool, note: str
) -> registry_pb2.DeclarationSummary:
    """The declaring unit's review: DECLARED -> REVIEWED or REFUSED."""
    if caller.role is not Role.UNIT:
        raise PermissionDeniedError("only the declaring unit reviews")
    with core.engine.begin() as connection:
        row = _declaration(connection, declaration_id)
        if row.declared_by != caller.org:
            raise NotFoundError("no such declaration")
        return _advance(
            connection, row, DECLARED, REVIEWED, caller, approve, note, core.now()
        )


def confirm(
    core: GatewayCore, caller: Identity, declaration_id: str, approve: bool, note: str
) -> registry_pb2.DeclarationSummary:
    """The county finance bureau's confirmation; only this changes the registry."""
    if caller.role is not Role.FINANCE:
        raise PermissionDeniedError("only the finance bureau confirms")
    county = county_of(caller)
    with core.engine.begin() as connection:
        row = _declaration(connection, declaration_id)
        if row.county != county:
            raise NotFoundError("no such declaration")
        now = core.now()
        summary = _advance(
            connection, row, REVIEWED, CONFIRMED, caller, approve, note, now
        )
        if approve:
            _register(connection, row, now)
        return summary


def get(
    core: GatewayCore, caller: Identity, declaration_id: str
) -> registry_pb2.DeclarationSummary:
    """A declaration's steps, for its unit, its county's finance and auditors."""
    with core.engine.connect() as connection:
        row = _declaration(connection, declaration_id)
        if caller.role is Role.UNIT:
            visible = row.declared_by == caller.org
        elif caller.role is Role.FINANCE:
            visible = row.county == county_of(caller)
        else:
            visible = caller.role is Role.AUDITOR
        if not visible:
            raise NotFoundError("no such declaration")
        return _summary(connection, declaration_id)


# -- steps ----------------------------------------------------------------------


def _check(
    core: GatewayCore,
    connection: Connection,
    declaration: registry_pb2.AccountDeclaration,
    today: dt.date,
) -> _Checked:
    """Refuse a malformed declaration, naming the field and never its value."""
    id_number = normalize_id_number(declaration.id_number)
    if id_number_looks_numeric(declaration.id_number) or not check_id_number(
        id_number, today
    ):
        raise InvalidArgumentError("id_number is not a valid ID number")
    if not name_valid(normalize_name(declaration.name)):
        raise InvalidArgumentError("name is missing or malformed")
    if not REFERENCE.match(declaration.application_reference):
        raise InvalidArgumentError(
            "application_reference must name the beneficiary's signed application"
        )
    if declaration.account_kind not in ACCOUNT_KINDS:
        raise InvalidArgumentError("account_kind is not 社保卡, 银行卡 or 存折")
    account = normalize_account(declaration.account_number)
    if not account_well_formed(account):
        raise InvalidArgumentError("account_number is malformed")

    bank = connection.execute(
        select(schema.banks.c.card_prefix).where(
            schema.banks.c.bank_code == declaration.bank_code
        )
    ).one_or_none()
    if bank is None:
        raise InvalidArgumentError("bank_code names no known bank")
    if declaration.account_kind != PASSBOOK_KIND and not account.startswith(
        bank.card_prefix
    ):
        raise InvalidArgumentError("the card does not belong to the declared bank")

    person = core.tokenizer.person(id_number)
    proxy = _proxy(core, declaration, today)
    if proxy is not None and proxy == person:
        raise InvalidArgumentError("a beneficiary cannot be their own proxy")
    return _Checked(person, core.tokenizer.account(account), proxy)


def _proxy(
    core: GatewayCore, declaration: registry_pb2.AccountDeclaration, today: dt.date
) -> bytes | None:
    if not declaration.proxy_name and not declaration.proxy_id_number:
        return None
    proxy_id = normalize_id_number(declaration.proxy_id_number)
    if not name_valid(normalize_name(declaration.proxy_name)):
        raise InvalidArgumentError("proxy_name is missing or malformed")
    if id_number_looks_numeric(declaration.proxy_id_number) or not check_id_number(
        proxy_id, today
    ):
        raise InvalidArgumentError("proxy_id_number is not a valid ID number")
    return core.tokenizer.person(proxy_id)


def _declaration(connection: Connection, declaration_id: str) -> Row[Any]:
    row = connection.execute(
        select(schema.registry_declarations).where(
            schema.registry_declarations.c.declaration_id == declaration_id
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError("no such declaration")
    return row


def _advance(
    connection: Connection,
    row: Row[Any],
    expected: str,
    target: str,
    caller: Identity,
    approve: bool,
    note: str,
    now: dt.datetime,
) -> registry_pb2.DeclarationSummary:
    declaration_id = row.declaration_id
    if row.state != expected:
        raise PreconditionError(f"the declaration is not {expected}")
    state = target if approve else REFUSED
    table = schema.registry_declarations
    updated = connection.execute(
        update(table)
        .where(table.c.declaration_id == declaration_id, table.c.state == expected)
        .values(state=state)
    )
    if updated.rowcount != 1:
        raise ConflictError("the declaration changed meanwhile; read it again")
    _add_step(connection, declaration_id, state, caller, now, note)
    return _summary(connection, declaration_id)


def _register(connection: Connection, row: Row[Any], now: dt.datetime) -> None:
    """Make the confirmed declaration the person's one registered account."""
    registry = schema.registry_accounts
    person = row.person_digest
    values = {
        "bank_code": row.bank_code,
        "account_digest": row.account_digest,
        "account_kind": row.account_kind,
        "proxy_person_digest": row.proxy_person_digest,
        "registered_at": now,
    }
    changed = connection.execute(
        update(registry).where(registry.c.person_digest == person).values(**values)
    )
    if changed.rowcount == 0:
        connection.execute(insert(registry).values(person_digest=person, **values))


def _add_step(
    connection: Connection,
    declaration_id: str,
    state: str,
    caller: Identity,
    now: dt.datetime,
    note: str,
) -> None:
    audit.append(
        connection, now, caller.org, f"declaration.{state.lower()}", declaration_id
    )
    steps = schema.declaration_steps
    number = connection.execute(
        select(func.count()).where(steps.c.declaration_id == declaration_id)
    ).scalar_one()
    connection.execute(
        insert(steps).values(
            declaration_id=declaration_id,
            step=number + 1,
            state=state,
            actor=caller.org,
            role=caller.role.value,
            at=now,
            note=note[:255],
        )
    )


def _summary(
    connection: Connection, declaration_id: str
) -> registry_pb2.DeclarationSummary:
    row = _declaration(connection, declaration_id)
    summary = registry_pb2.DeclarationSummary(
        declaration_id=declaration_id,
        county=row.county,
        bank_code=row.bank_code,
        account_kind=row.account_kind,
        changes_registered_account=row.changes_registered_account,
        state=_PROTO_STATES[row.state],
    )
    steps = schema.declaration_steps
    for step in connection.execute(
        select(steps)
        .where(steps.c.declaration_id == declaration_id)
        .order_by(steps.c.step)
    ):
        item = summary.steps.add(
            state=_PROTO_STATES[step.state],
            actor=step.actor,
            role=step.role,
            note=step.note,
        )
        item.at.FromDatetime(step.at)
    return summary
