"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from gateway.store import db, schema


def test_migrated_schema_matches_the_declared_one(database_url: str) -> None:
    engine = db.connect(database_url)
    try:
        db.migrate(engine)
        db.migrate(engine)  # a second run changes nothing
        with engine.connect() as connection:
            drift = compare_metadata(
                MigrationContext.configure(connection), schema.metadata
            )
            versions = (
                connection.execute(text("SELECT version_num FROM alembic_version"))
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert drift == []
    assert len(versions) == 1
