"""Statements that run once per record, handed to the database driver in bulk.

SQLAlchemy Core runs every bound value of every row through Python: type
processors, then the dialect's own handling of the parameter list, and for
an ``IN`` list it renders the list anew on every call. For the few
statements that run once per record (the inserts of records, claims,
results and account confirmations, and the look-ups of records and results
by id) that work costs about as much as the database does. These helpers
render each statement once per dialect, with SQLAlchemy's own compiler, and
give the driver plain tuples: one ``executemany`` for an insert, one query
per ``IN_CHUNK`` keys for a look-up.

Invariants:
- Values are converted with the column types' own bind processors, so what
  lands in the database is exactly what a Core ``insert`` would have stored
  (``UtcDateTime`` refuses naive datetimes here too). Binary columns are
  the one exception: every supported driver takes ``bytes`` as they are.
- Nothing here builds SQL from values. Table and column names come from
  ``schema``; every value is a bound parameter.
- The caller's transaction is the transaction: nothing here commits.
- ``select_in`` returns what the driver returns, with no result processing:
  it is only for columns the driver already gives as Python uses them (text,
  integers, bytes), never for dates or SQLAlchemy enums.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    LargeBinary,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect


def insert_rows(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """INSERT every row; all rows name the same columns as the first."""
    if not rows:
        return
    columns = tuple(rows[0])
    statement = _insert(connection.dialect, table, columns)
    _execute_many(
        connection, statement, (tuple(row[c] for c in columns) for row in rows)
    )


def upsert_rows(
    connection: Connection,
    table: Table,
    key: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """INSERT every row; where one with the same ``key`` exists, overwrite it."""
    if not rows:
        return
    columns = tuple(rows[0])
    statement = _upsert(connection.dialect, table, columns, tuple(key))
    _execute_many(
        connection, statement, (tuple(row[c] for c in columns) for row in rows)
    )


# Keys per IN list: well under SQLite's bound on bound parameters. A shorter
# last list is padded with its own last key, so each look-up is rendered once.
IN_CHUNK = 500


def select_in(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    key: str,
    keys: Sequence[Any],
) -> list[tuple[Any, ...]]:
    """``columns`` of every row whose ``key`` is one of ``keys``, as tuples."""
    statement = _select_in(connection.dialect, table, tuple(columns), key)
    if not connection.in_transaction():
        # What SQLAlchemy does before a connection's first statement; the
        # driver's cursor below would otherwise read outside any transaction.
        connection.begin()
    cursor = connection.connection.cursor()
    rows: list[tuple[Any, ...]] = []
    try:
        for start in range(0, len(keys), IN_CHUNK):
            part = list(keys[start : start + IN_CHUNK])
            part += [part[-1]] * (IN_CHUNK - len(part))
            cursor.execute(statement.sql, statement.all_parameters([part])[0])
            rows.extend(cursor.fetchall())
    finally:
        cursor.close()
    return rows


def update_in(
    connection: Connection,
    table: Table,
    values: Mapping[str, Any],
    key: str,
    keys: Sequence[Any],
) -> None:
    """SET ``values`` on every row whose ``key`` is one of ``keys``."""
    columns = tuple(values)
    statement = _update_in(connection.dialect, table, columns, key)
    for start in range(0, len(keys), IN_CHUNK):
        part = list(keys[start : start + IN_CHUNK])
        part += [part[-1]] * (IN_CHUNK - len(part))
        parameters = statement.all_parameters([[*values.values(), *part]])
        connection.exec_driver_sql(statement.sql, parameters[0])


class _Statement:
    """A statement rendered once for a dialect, and how to order its values.

    Values come in the order of the ``p0, p1, ...`` parameters the statement
    was built with; the rendered SQL may bind them in another order (an
    INSERT names columns in table order).
    """

    def __init__(self, dialect: Dialect, compiled: Any, columns: Sequence[Any]):
        self.sql = str(compiled)
        self.positional = bool(dialect.positional)
        names = list(compiled.positiontup or []) or [
            f"p{i}" for i in range(len(columns))
        ]
        self.names = names
        self.order = [int(name[1:]) for name in names]
        processors = [
            None
            if isinstance(column.type, LargeBinary)
            else column.type.bind_processor(dialect)
            for column in columns
        ]
        self.processed: list[tuple[int, Callable[[Any], Any]]] = []
        for place, index in enumerate(self.order):
            processor = processors[index]
            if processor is not None:
                self.processed.append((place, processor))

    def all_parameters(
        self, rows: Iterable[Sequence[Any]]
    ) -> list[tuple[Any, ...]] | list[dict[str, Any]]:
        order, processed = self.order, self.processed
        # Rows of one call mostly share their timestamps: convert each once.
        last: dict[int, tuple[Any, Any]] = {}
        out: list[list[Any]] = []
        for row in rows:
            values = [row[index] for index in order]
            for place, processor in processed:
                value = values[place]
                if value is None:
                    continue
                seen = last.get(place)
                if seen is not None and seen[0] is value:
                    values[place] = seen[1]
                else:
                    values[place] = processor(value)
                    last[place] = (value, values[place])
            out.append(values)
        if self.positional:
            return [tuple(values) for values in out]
        return [dict(zip(self.names, values, strict=True)) for values in out]


@lru_cache(maxsize=64)
def _insert(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> _Statement:
    statement = insert(table).values(_parameters(table, columns))
    compiled = statement.compile(dialect=dialect)
    return _Statement(dialect, compiled, [table.c[c] for c in columns])


@lru_cache(maxsize=64)
def _upsert(
    dialect: Dialect, table: Table, columns: tuple[str, ...], key: tuple[str, ...]
) -> _Statement:
    if dialect.name not in _UPSERTS:
        raise NotImplementedError(f"no upsert for the {dialect.name} dialect")
    statement = _UPSERTS[dialect.name](table).values(_parameters(table, columns))
    statement = statement.on_conflict_do_update(
        index_elements=list(key),
        set_={c: statement.excluded[c] for c in columns if c not in key},
    )
    compiled = statement.compile(dialect=dialect)
    return _Statement(dialect, compiled, [table.c[c] for c in columns])


@lru_cache(maxsize=64)
def _select_in(
    dialect: Dialect, table: Table, columns: tuple[str, ...], key: str
) -> _Statement:
    column = table.c[key]
    places = [bindparam(f"p{i}", type_=column.type) for i in range(IN_CHUNK)]
    statement = select(*(table.c[c] for c in columns)).where(column.in_(places))
    compiled = statement.compile(dialect=dialect)
    return _Statement(dialect, compiled, [column] * IN_CHUNK)


@lru_cache(maxsize=64)
def _update_in(
    dialect: Dialect, table: Table, columns: tuple[str, ...], key: str
) -> _Statement:
    column = table.c[key]
    settings = {
        c: bindparam(f"p{i}", type_=table.c[c].type) for i, c in enumerate(columns)
    }
    places = [
        bindparam(f"p{len(columns) + i}", type_=column.type) for i in range(IN_CHUNK)
    ]
    statement = update(table).where(column.in_(places)).values(settings)
    compiled = statement.compile(dialect=dialect)
    targets = [table.c[c] for c in columns] + [column] * IN_CHUNK
    return _Statement(dialect, compiled, targets)


# Both dialects spell "insert, or update on conflict" the same way.
_UPSERTS: dict[str, Callable[[Table], Any]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


def _parameters(table: Table, columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: bindparam(f"p{i}", type_=table.c[c].type) for i, c in enumerate(columns)}


def _execute_many(
    connection: Connection, statement: _Statement, rows: Iterable[Sequence[Any]]
) -> None:
    parameters = statement.all_parameters(rows)
    if parameters:
        connection.exec_driver_sql(statement.sql, parameters)
