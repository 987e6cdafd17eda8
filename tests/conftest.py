"""A real gateway on port 0, over real mutual TLS, with its own fictional data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.client import ClientCredentials, open_channel
from gateway.config import GatewayConfig, dev_config
from gateway.core import Clock
from gateway.reference import import_reference
from gateway.sealing import Tokenizer
from gateway.server import Gateway, build
from gateway.store import db
from gateway.tls import restrict_cipher_suites
from keys.ca import DevelopmentCA, write_credentials
from keys.identity import Identity, Role
from keys.keystore import LocalKeyStore
from tests.fakes import Person, people, write_reference

restrict_cipher_suites()


def database_urls() -> list[str]:
    urls = ["sqlite"]
    if os.environ.get("YKT_TEST_DATABASE_URL"):
        urls.append("postgresql")
    return urls


@pytest.fixture(params=database_urls())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    from sqlalchemy import create_engine

    base = os.environ["YKT_TEST_DATABASE_URL"]
    schema_name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema_name}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
    admin.dispose()


@dataclass
class Running:
    gateway: Gateway
    config: GatewayConfig
    ca: DevelopmentCA
    target: str
    clients: Path
    persons: list[Person]
    reference: Path

    def client(self, role: Role, org: str, **kwargs: object) -> ClientCredentials:
        directory = self.clients / f"{role.value}-{org}-{uuid.uuid4().hex[:6]}"
        credentials = self.ca.dev_generate_credentials(Identity(role, org), **kwargs)  # type: ignore[arg-type]
        write_credentials(credentials, self.ca.cert, directory)
        return ClientCredentials(directory)

    def channel(self, credentials: ClientCredentials):  # type: ignore[no-untyped-def]
        return open_channel(self.target, credentials, timeout=30)


class MovableClock:
    """A clock tests move by hand; the gateway reads it for every "now"."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


def start_gateway(
    tmp_path: Path,
    database_url: str | None,
    clock: Clock | None = None,
    *,
    persons: list[Person] | None = None,
    bank: str = "CQRCB",
    connector: str = "grpc-pull",
    file_deliveries: bool = True,
    keep_files: bool = False,
) -> Running:
    """A real gateway on port 0 with fictional reference data, already serving.

    The county pays CQ-NY-001 through ``bank`` in the style ``connector``.
    The reference data is imported before the gateway is built, so its file
    deliveries see a file-connected bank on their first scan; with
    ``file_deliveries=False`` the gateway delivers no files by itself and a
    test drives a ``FileDelivery`` of its own.
    """
    persons = persons if persons is not None else people(40)
    reference = tmp_path / "reference"
    write_reference(reference, persons, bank=bank, connector=connector)
    state = tmp_path / "state"
    config = dev_config(
        state, "127.0.0.1:0", None, database_url, keep_exchange_files=keep_files
    )

    engine = db.connect(config.database_url)
    db.migrate(engine)
    tokenizer = Tokenizer(LocalKeyStore(config.keys_directory).token_key())
    import_reference(engine, tokenizer, reference)
    engine.dispose()

    if not file_deliveries:
        config = dataclasses.replace(config, exchange_directory=None)
    gateway = build(config, clock=clock)
    gateway.server.start()
    return Running(
        gateway,
        config,
        DevelopmentCA(state / "pki"),
        f"localhost:{gateway.port}",
        tmp_path / "clients",
        persons,
        reference,
    )


@pytest.fixture
def running(tmp_path: Path, database_url: str) -> Iterator[Running]:
    started = start_gateway(tmp_path, database_url)
    yield started
    started.gateway.stop(0)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)
