"""The rules' view of the store: registry, reference lists and claims.

Every lookup is by keyed digest; no plaintext leaves the caller. Lookups run
inside the submission's transaction, so a claim made for an earlier record of
the same batch is visible to the later ones, and the database's uniqueness
constraint on claims has the last word between concurrent replicas.
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from gateway.rules import RegistryEntry
from gateway.sealing import Tokenizer
from gateway.store import schema


class StoreLookups:
    def __init__(self, connection: Connection, tokenizer: Tokenizer) -> None:
        self._connection = connection
        self._tokenizer = tokenizer

    def person_digest(self, normalised_id: str) -> bytes:
        return self._tokenizer.person(normalised_id)

    def account_digest(self, digits: str) -> bytes:
        return self._tokenizer.account(digits)

    def registry_entry(self, person: bytes) -> RegistryEntry | None:
        table = schema.registry_accounts
        row = self._connection.execute(
            select(table).where(table.c.person_digest == person)
        ).one_or_none()
        if row is None:
            return None
        return RegistryEntry(
            bank_code=row.bank_code,
            account_digest=row.account_digest,
            account_kind=row.account_kind,
            proxy_person_digest=row.proxy_person_digest,
        )

    def on_list(self, list_name: str, person: bytes) -> bool:
        table = schema.reference_lists
        row = self._connection.execute(
            select(table.c.person_digest).where(
                table.c.list_name == list_name, table.c.person_digest == person
            )
        ).first()
        return row is not None

    def already_claimed(self, person: bytes, policy_code: str, period: str) -> bool:
        table = schema.claims
        row = self._connection.execute(
            select(table.c.record_id).where(
                table.c.person_digest == person,
                table.c.policy_code == policy_code,
                table.c.period == period,
            )
        ).first()
        return row is not None

    def claim(
        self, person: bytes, policy_code: str, period: str, record_id: str
    ) -> None:
        """Claim (person, policy, period) for a record; the database keeps it unique."""
        self._connection.execute(
            insert(schema.claims).values(
                person_digest=person,
                policy_code=policy_code,
                period=period,
                record_id=record_id,
            )
        )
