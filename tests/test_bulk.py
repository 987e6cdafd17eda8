"""The driver-level bulk writes store exactly what SQLAlchemy Core would."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, insert, select

from gateway.store import bulk, db, schema

NOW = dt.datetime(2026, 12, 3, 8, 30, 15, 123456, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=24)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.connect(database_url)
    db.migrate(engine)
    yield engine
    engine.dispose()


def confirmation(n: int, verified_at: dt.datetime) -> dict[str, object]:
    return {
        "bank_code": "CQRCB",
        "account_digest": bytes([n]) * 32,
        "holder_digest": bytes([n + 100]) * 32,
        "verified_at": verified_at,
        "expires_at": verified_at + dt.timedelta(hours=24),
    }


def stored(engine: Engine) -> list[tuple[object, ...]]:
    table = schema.account_verifications
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.account_digest)).all()
    return [tuple(row) for row in rows]


def test_insert_rows_stores_what_a_core_insert_stores(engine: Engine) -> None:
    table = schema.account_verifications
    with engine.begin() as connection:
        connection.execute(insert(table), [confirmation(1, NOW)])
    by_core = stored(engine)
    with engine.begin() as connection:
        connection.execute(table.delete())
        bulk.insert_rows(connection, table, [confirmation(1, NOW)])

    assert stored(engine) == by_core
    assert by_core[0][3] == NOW  # read back aware, to the microsecond


def test_insert_rows_of_nothing_writes_nothing(engine: Engine) -> None:
    with engine.begin() as connection:
        bulk.insert_rows(connection, schema.account_verifications, [])

    assert stored(engine) == []


def test_upsert_rows_replaces_the_row_with_the_same_key_only(engine: Engine) -> None:
    table = schema.account_verifications
    key = ("bank_code", "account_digest", "holder_digest")
    with engine.begin() as connection:
        bulk.upsert_rows(connection, table, key, [confirmation(1, NOW)])
        bulk.upsert_rows(
            connection, table, key, [confirmation(1, LATER), confirmation(2, NOW)]
        )

    rows = stored(engine)
    assert [(row[3], row[4]) for row in rows] == [
        (LATER, LATER + dt.timedelta(hours=24)),
        (NOW, NOW + dt.timedelta(hours=24)),
    ]


def test_bulk_writes_refuse_naive_datetimes_and_leave_nothing(engine: Engine) -> None:
    naive = confirmation(1, NOW)
    naive["verified_at"] = NOW.replace(tzinfo=None)
    rows = [confirmation(2, NOW), naive]

    with pytest.raises(ValueError, match="naive"), engine.begin() as connection:
        bulk.insert_rows(connection, schema.account_verifications, rows)

    assert stored(engine) == []


def test_bulk_writes_keep_the_callers_transaction(engine: Engine) -> None:
    connection = engine.connect()
    transaction = connection.begin()
    bulk.insert_rows(connection, schema.account_verifications, [confirmation(1, NOW)])

    transaction.rollback()
    connection.close()

    assert stored(engine) == []


def test_select_in_finds_what_a_core_select_finds_across_chunks(engine: Engine) -> None:
    table = schema.account_verifications
    rows = [confirmation(n, NOW) for n in range(1, 121)]
    with engine.begin() as connection:
        bulk.insert_rows(connection, table, rows)
    # More keys than one IN list holds, a key twice and keys that match nothing.
    wanted = [bytes([n]) * 32 for n in range(1, 121, 2)] + [bytes([0]) * 32]
    wanted = wanted * (bulk.IN_CHUNK // len(wanted) + 1) + [bytes([3]) * 32]
    assert len(wanted) > bulk.IN_CHUNK

    with engine.begin() as connection:
        found = bulk.select_in(
            connection,
            table,
            ("account_digest", "holder_digest"),
            "account_digest",
            wanted,
        )
        by_core = connection.execute(
            select(table.c.account_digest, table.c.holder_digest).where(
                table.c.account_digest.in_(wanted)
            )
        ).all()

    assert sorted(set(found)) == sorted(tuple(row) for row in by_core)
    assert {account for account, _ in found} == {
        bytes([n]) * 32 for n in range(1, 121, 2)
    }


def test_select_in_of_no_keys_finds_nothing(engine: Engine) -> None:
    with engine.begin() as connection:
        bulk.insert_rows(
            connection, schema.account_verifications, [confirmation(1, NOW)]
        )
        found = bulk.select_in(
            connection,
            schema.account_verifications,
            ("account_digest",),
            "account_digest",
            [],
        )

    assert found == []


def test_select_in_reads_the_callers_uncommitted_writes(engine: Engine) -> None:
    with engine.begin() as connection:
        bulk.insert_rows(
            connection, schema.account_verifications, [confirmation(7, NOW)]
        )
        found = bulk.select_in(
            connection,
            schema.account_verifications,
            ("bank_code",),
            "account_digest",
            [bytes([7]) * 32],
        )

    assert found == [("CQRCB",)]


def test_update_in_sets_values_on_the_named_rows_only_across_chunks(
    engine: Engine,
) -> None:
    table = schema.account_verifications
    with engine.begin() as connection:
        bulk.insert_rows(connection, table, [confirmation(n, NOW) for n in range(60)])
    named = [bytes([n]) * 32 for n in range(0, 60, 3)]
    # More keys than one IN list holds: the named ones, over and over.
    keys = named * (bulk.IN_CHUNK // len(named) + 1)
    assert len(keys) > bulk.IN_CHUNK

    with engine.begin() as connection:
        bulk.update_in(
            connection,
            table,
            {"expires_at": LATER, "bank_code": "PSBC"},
            "account_digest",
            keys,
        )

    changed = {row[1]: (row[0], row[4]) for row in stored(engine)}
    for n in range(60):
        account = bytes([n]) * 32
        if account in named:
            assert changed[account] == ("PSBC", LATER)
        else:
            assert changed[account] == ("CQRCB", NOW + dt.timedelta(hours=24))


def test_select_in_as_a_first_statement_begins_the_transaction(engine: Engine) -> None:
    with engine.connect() as connection:
        assert not connection.in_transaction()

        bulk.select_in(
            connection,
            schema.account_verifications,
            ("bank_code",),
            "account_digest",
            [bytes([7]) * 32],
        )

        assert connection.in_transaction()
