"""The rules' view of the store: registry, reference lists and claims.

Every lookup is by keyed digest; no plaintext leaves the caller. Lookups run
inside the submission's transaction, so a claim made for an earlier record of
the same batch is visible to the later ones, and the database's uniqueness
constraint on claims has the last word between concurrent replicas. Given the
batch's id, the lookups also tell the batch's own claims from older ones
(``claimed_in_batch``), so that nothing in memory grows with the batch.

Cost: a batch is checked a chunk at a time, and ``prefetch`` answers a whole
chunk's lookups with one query per table, so a million records cost a few
thousand queries, not a few million. A person not prefetched is looked up
on its own, which is correct and only slower.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, Select, select

from gateway.normalize import normalize_id_number
from gateway.rules import RegistryEntry
from gateway.sealing import Tokenizer
from gateway.store import bulk, schema

# Digests per IN clause: well under SQLite's bound on parameters.
IN_BATCH = 2000


class StoreLookups:
    def __init__(
        self,
        connection: Connection,
        tokenizer: Tokenizer,
        *,
        policy_code: str = "",
        period: str = "",
        batch_id: str = "",
    ) -> None:
        """``batch_id`` names the batch whose claims ``claimed_in_batch``
        reports; without it, no claim is the batch's own."""
        self._connection = connection
        self._tokenizer = tokenizer
        self._policy_code = policy_code
        self._period = period
        self._batch_id = batch_id
        self._digests: dict[str, bytes] = {}
        self._known: set[bytes] = set()
        self._registry: dict[bytes, RegistryEntry] = {}
        self._listed: set[tuple[str, bytes]] = set()
        self._claimed: set[bytes] = set()
        self._claimed_in_batch: set[bytes] = set()
        self._pending_claims: list[dict[str, object]] = []

    def person_digest(self, normalised_id: str) -> bytes:
        digest = self._digests.get(normalised_id)
        if digest is None:
            digest = self._tokenizer.person(normalised_id)
            self._digests[normalised_id] = digest
        return digest

    def account_digest(self, digits: str) -> bytes:
        return self._tokenizer.account(digits)

    def prefetch(self, id_numbers: Iterable[str], list_names: Sequence[str]) -> None:
        """Answer the coming lookups for these people with one query per table.

        ``id_numbers`` are as written; malformed ones cost a digest and find
        nothing, which is what looking them up one by one would find.
        """
        self._digests.clear()
        self._known.clear()
        self._registry.clear()
        self._listed.clear()
        self._claimed.clear()
        self._claimed_in_batch.clear()
        people = list(
            {
                self.person_digest(normalize_id_number(text))
                for text in id_numbers
                if text
            }
        )
        connection = self._connection
        registry, lists, claims = (
            schema.registry_accounts,
            schema.reference_lists,
            schema.claims,
        )
        for start in range(0, len(people), IN_BATCH):
            part = people[start : start + IN_BATCH]
            for person, bank_code, account, kind, proxy in bulk.select_in(
                connection,
                registry,
                (
                    "person_digest",
                    "bank_code",
                    "account_digest",
                    "account_kind",
                    "proxy_person_digest",
                ),
                "person_digest",
                part,
            ):
                self._registry[person] = RegistryEntry(bank_code, account, kind, proxy)
            if list_names:
                for row in connection.execute(
                    select(lists.c.list_name, lists.c.person_digest).where(
                        lists.c.list_name.in_(list_names),
                        lists.c.person_digest.in_(part),
                    )
                ):
                    self._listed.add((row.list_name, row.person_digest))
            if self._policy_code:
                for claim in connection.execute(
                    self._claims_query().where(claims.c.person_digest.in_(part))
                ):
                    self._claimed.add(claim.person_digest)
                    if claim.batch_id == self._batch_id:
                        self._claimed_in_batch.add(claim.person_digest)
        self._known.update(people)

    def _claims_query(self) -> Select[tuple[bytes, str | None]]:
        """Claims on this policy and period, with the batch of each claim's
        record. A claim made by the chunk being stored has no record yet;
        ``claim`` remembers those until the next chunk."""
        claims, records = schema.claims, schema.records
        return (
            select(claims.c.person_digest, records.c.batch_id)
            .outerjoin(records, records.c.record_id == claims.c.record_id)
            .where(
                claims.c.policy_code == self._policy_code,
                claims.c.period == self._period,
            )
        )

    def registry_entry(self, person: bytes) -> RegistryEntry | None:
        if person in self._known:
            return self._registry.get(person)
        table = schema.registry_accounts
        row = self._connection.execute(
            select(table).where(table.c.person_digest == person)
        ).one_or_none()
        return None if row is None else _entry(row)

    def on_list(self, list_name: str, person: bytes) -> bool:
        if person in self._known:
            return (list_name, person) in self._listed
        table = schema.reference_lists
        row = self._connection.execute(
            select(table.c.person_digest).where(
                table.c.list_name == list_name, table.c.person_digest == person
            )
        ).first()
        return row is not None

    def already_claimed(self, person: bytes, policy_code: str, period: str) -> bool:
        prefetched = (policy_code, period) == (self._policy_code, self._period)
        if prefetched and person in self._known:
            return person in self._claimed
        table = schema.claims
        row = self._connection.execute(
            select(table.c.record_id).where(
                table.c.person_digest == person,
                table.c.policy_code == policy_code,
                table.c.period == period,
            )
        ).first()
        return row is not None

    def claimed_in_batch(self, person: bytes) -> bool:
        if person in self._claimed_in_batch:
            return True
        if person in self._known or not (self._batch_id and self._policy_code):
            return False
        query = self._claims_query().where(schema.claims.c.person_digest == person)
        row = self._connection.execute(query).first()
        return row is not None and row.batch_id == self._batch_id

    def claim(
        self, person: bytes, policy_code: str, period: str, record_id: str
    ) -> None:
        """Claim (person, policy, period) for a record; ``flush_claims`` writes
        the claims, and the database keeps them unique."""
        self._pending_claims.append(
            {
                "person_digest": person,
                "policy_code": policy_code,
                "period": period,
                "record_id": record_id,
            }
        )
        if (policy_code, period) == (self._policy_code, self._period):
            self._claimed.add(person)
            self._claimed_in_batch.add(person)

    def flush_claims(self) -> None:
        if self._pending_claims:
            bulk.insert_rows(self._connection, schema.claims, self._pending_claims)
            self._pending_claims = []


def _entry(row: Row[Any]) -> RegistryEntry:
    return RegistryEntry(
        bank_code=row.bank_code,
        account_digest=row.account_digest,
        account_kind=row.account_kind,
        proxy_person_digest=row.proxy_person_digest,
    )
