"""Database triggers that refuse changes to submitted content and evidence.

Art. 15: nobody may alter submitted data afterwards. The application never
issues UPDATE or DELETE on these columns; the triggers make sure that nobody
else does either, short of dropping the triggers (which the audit log, not
this module, is there to catch).
"""

from __future__ import annotations

from collections.abc import Mapping

MESSAGE = "ykt: submitted content and evidence are immutable"


def sqlite_statements(guarded: Mapping[str, tuple[str, ...]]) -> list[str]:
    statements = []
    for table, columns in guarded.items():
        cols = ", ".join(f'"{c}"' for c in columns)
        statements.append(
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_update "
            f'BEFORE UPDATE OF {cols} ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
        statements.append(
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete "
            f'BEFORE DELETE ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
    return statements


def postgresql_statements(guarded: Mapping[str, tuple[str, ...]]) -> list[str]:
    statements = [
        "CREATE OR REPLACE FUNCTION ykt_refuse_change() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"RAISE EXCEPTION '{MESSAGE}'; END $$"
    ]
    for table, columns in guarded.items():
        cols = ", ".join(f'"{c}"' for c in columns)
        statements.append(f'DROP TRIGGER IF EXISTS {table}_no_update ON "{table}"')
        statements.append(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OF {cols} "
            f'ON "{table}" FOR EACH ROW EXECUTE FUNCTION ykt_refuse_change()'
        )
        statements.append(f'DROP TRIGGER IF EXISTS {table}_no_delete ON "{table}"')
        statements.append(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE "
            f'ON "{table}" FOR EACH ROW EXECUTE FUNCTION ykt_refuse_change()'
        )
    return statements


def statements_for(dialect: str, guarded: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The trigger DDL that guards ``guarded`` (table -> columns)."""
    if dialect == "sqlite":
        return sqlite_statements(guarded)
    if dialect == "postgresql":
        return postgresql_statements(guarded)
    raise ValueError(f"no immutability triggers for dialect {dialect}")
