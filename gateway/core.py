"""The gateway's dependencies in one place, and the helpers every flow shares.

``GatewayCore`` is built once at start-up and handed to every flow: the store,
the key store, the trust store, the gateway's signer and the clock. Time is
always taken from the injected clock, so tests can move it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, select

from gateway import audit
from gateway.errors import NotFoundError
from gateway.sealing import DataKey, Tokenizer
from gateway.store import schema
from gateway.workdays import WorkingCalendar
from keys.keystore import KeyStore
from keys.signing import Signer
from keys.trust import TrustStore

GATEWAY_AUDIENCE = "gateway"

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Settings:
    # How long a pulled set stays leased before it is redelivered.
    lease_seconds: int = 120
    # The most checks or instructions one signed set carries.
    set_size: int = 1000
    # The most records one batch may declare.
    max_records: int = 2_000_000
    # How long the sets the gateway signs stay valid.
    set_validity_hours: int = 72
    # How long an agent bank's confirmation of an account is reused before
    # the account is checked again. Only confirmations are reused: a refusal
    # may be put right by the beneficiary at any time.
    verification_ttl_hours: int = 72
    # How long before a deadline an unmet duty counts as at risk.
    deadline_margin_hours: int = 6
    # How many times a set is delivered without an acknowledgement before it
    # becomes a dead letter.
    max_deliveries: int = 20
    # How long after a batch closed its personal data stays readable.
    retention_days: int = 180
    # Finance organisations that may unmask a record (a separate permission;
    # every use is audited).
    unmask_orgs: frozenset[str] = frozenset()


def _ignore() -> None:
    return None


def _ignore_bank(bank_code: str) -> None:
    return None


def _ignore_dead_letter(bank_code: str, kind: str) -> None:
    return None


@dataclass
class GatewayCore:
    engine: Engine
    keystore: KeyStore
    trust: TrustStore
    signer: Signer
    clock: Clock = utcnow
    settings: Settings = field(default_factory=Settings)
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar.load)
    # Called each time a deadline rests on a provisional calendar answer.
    on_provisional_deadline: Callable[[], None] = _ignore
    # Called with the bank's code when a bank's answer contradicts a recorded one.
    on_conflicting_result: Callable[[str], None] = _ignore_bank
    # Called with the bank's code and the set kind for each dead letter.
    on_dead_letter: Callable[[str, str], None] = _ignore_dead_letter
    _data_keys: dict[str, DataKey] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.tokenizer = Tokenizer(self.keystore.token_key())

    def now(self) -> dt.datetime:
        return self.clock()

    def data_key(self, connection: Connection, batch_id: str) -> DataKey:
        """The batch's data key, unwrapped once and cached in memory."""
        with self._lock:
            cached = self._data_keys.get(batch_id)
        if cached is not None:
            return cached
        row = connection.execute(
            select(schema.batches.c.kek_id, schema.batches.c.wrapped_key).where(
                schema.batches.c.batch_id == batch_id
            )
        ).one_or_none()
        if row is None:
            raise NotFoundError("no such batch")
        key = DataKey(
            self.keystore.unwrap(row.kek_id, row.wrapped_key, context=batch_id.encode())
        )
        with self._lock:
            self._data_keys[batch_id] = key
        return key

    def audit(
        self,
        connection: Connection,
        actor: str,
        action: str,
        subject: str,
        detail: str = "",
    ) -> None:
        """Write an audit entry in the caller's transaction (``gateway.audit``)."""
        audit.append(connection, self.now(), actor, action, subject, detail)

    def forget_data_keys(self) -> None:
        """Drop every cached data key, after keys were destroyed."""
        with self._lock:
            self._data_keys.clear()

    def remember_data_key(self, batch_id: str, key: DataKey) -> None:
        with self._lock:
            self._data_keys[batch_id] = key
