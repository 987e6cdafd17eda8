"""The gateway's preset rules (Art. 18): one verdict per payment record.

``BatchChecker`` checks the records of one batch -- one policy, one period --
in row order and gives each a ``Verdict``: the record's normalised values,
the keyed digests that stand for its person and account, and every reason
the gateway refuses it for. Bank-side reasons (account verification by the
agent bank) come later and are not decided here.

The rules, in priority order (``gateway.reasons``):
  1. ID_INVALID: the ID number is malformed (GB 11643), or a spreadsheet
     stored it as a number and so lost its last digits.
  2. NAME_INVALID, AMOUNT_INVALID (missing, zero or negative),
     AMOUNT_OVER_LIMIT (over the policy's limit for one person in one period).
  3. DUPLICATE_IN_BATCH: the person already has a record in this batch that
     passed every check here. The first *valid* record of a person proceeds
     and later ones are refused; a refused record reserves nothing, so a
     corrected line further down the same list is still paid, once.
  4. DUPLICATE_PAID: the person is already paid, or being paid, for this
     policy and period by an earlier batch. (Not checked beside
     DUPLICATE_IN_BATCH: the claim the store holds is then this batch's own.)
  5. DECEASED, NOT_ELIGIBLE (not on the list the policy requires), EXCLUDED
     (on the list the policy excludes), against the reference lists.
  6. ACCOUNT_INVALID: the account is not 10-30 digits; or the person's
     registered account is a card, this is another number, and it fails the
     Luhn check (a mistyped card). Luhn never refuses the registered account
     (some genuine cards fail it) and never judges a number when the person
     has no card registered: a passbook has no check digit.
  7. ACCOUNT_NOT_REGISTERED: the person has no one-card account, or this is
     not it (Art. 10: one person, one account). Not listed beside
     ACCOUNT_INVALID when the person has a registered account: a malformed
     number cannot be it, and saying so twice helps nobody.
  8. PROXY_INVALID (Art. 13): the proxy's name and ID number are half filled
     or invalid; the registry records a proxy and the record names none or
     another; the record names a proxy the registry does not have; or the
     record names the beneficiary as their own proxy.

Every check that can run does run, and the verdict lists every failure, so
a department fixes a record once. Checks that need the person (3, 4, 5,
the Luhn half of 6, 7 and the registry half of 8) cannot run when the ID
number is invalid: they would be about someone else's number, or nobody's.

Invariants and threats:
  * Paying twice: at most one record per person is accepted in a batch (3):
    the checker remembers who it accepted, or, when the caller claims each
    accepted person as it goes, ``Lookups.claimed_in_batch`` must see those
    claims. Across batches ``Lookups.already_claimed`` must count every record
    accepted for the policy and period, paid or still in flight (4).
  * Paying the wrong account: only the registered account is accepted (7);
    its registered proxy must be named when it belongs to one (8).
  * Personal data: the checker keeps only keyed digests of people in memory
    (``Lookups.person_digest``); a verdict carries the normalised values
    because the instruction to the bank needs them, and nothing here logs or
    raises with them.
  * Cost: each digest is computed once per record and every lookup is a
    single call, so a million-record batch costs a million of each.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from gateway.normalize import (
    account_well_formed,
    check_id_number,
    id_number_looks_numeric,
    luhn_ok,
    name_valid,
    normalize_account,
    normalize_id_number,
    normalize_name,
    parse_amount_fen,
)
from gateway.reasons import ReasonCode, ordered

if TYPE_CHECKING:
    from gateway.files import SourceRow

DECEASED_LIST = "deceased"
# The one kind of one-card account without a check digit.
PASSBOOK_KIND = "存折"


@dataclass(frozen=True)
class PolicyRules:
    """What the policy list says about one policy, as the rules need it."""

    policy_code: str
    max_amount_fen: int
    requires_list: str | None
    excludes_list: str | None


@dataclass(frozen=True)
class RegistryEntry:
    """A person's registered one-card account (Art. 10, 11).

    ``account_kind`` is 社保卡, 银行卡 or 存折. ``proxy_person_digest`` is set
    when the account belongs to a registered proxy (Art. 13).
    """

    bank_code: str
    account_digest: bytes
    account_kind: str
    proxy_person_digest: bytes | None = None


class Lookups(Protocol):
    """What the rules need from the store, keyed by keyed digests."""

    def person_digest(self, normalised_id: str) -> bytes: ...

    def account_digest(self, digits: str) -> bytes: ...

    def registry_entry(self, person: bytes) -> RegistryEntry | None: ...

    def on_list(self, list_name: str, person: bytes) -> bool: ...

    def already_claimed(self, person: bytes, policy_code: str, period: str) -> bool: ...

    def claimed_in_batch(self, person: bytes) -> bool:
        """Whether the batch being checked has already claimed this person.

        Lookups that see the batch's own claims answer from them, and the
        checker then remembers nobody; the others answer False.
        """
        ...


@dataclass(frozen=True)
class Verdict:
    """The outcome of the gateway's checks for one record.

    The text fields hold normalised values. ``person`` is None when the ID
    number is invalid; ``account`` is None when the account is malformed.
    ``id_stored_as_number`` selects the stored-as-number message for
    ID_INVALID.
    """

    reasons: tuple[ReasonCode, ...]
    person: bytes | None
    account: bytes | None
    id_number: str
    name: str
    account_number: str
    amount_fen: int | None
    proxy_name: str
    proxy_id_number: str
    id_stored_as_number: bool = False

    @property
    def accepted(self) -> bool:
        return not self.reasons

    @property
    def primary_reason(self) -> ReasonCode | None:
        return self.reasons[0] if self.reasons else None

    def refused_for(self, reason: ReasonCode) -> Verdict:
        """This verdict with one more reason, in priority order."""
        return replace(self, reasons=tuple(ordered([*self.reasons, reason])))


class BatchChecker:
    """Checks the records of one batch, in row order.

    Not thread-safe: it remembers who already has a valid record in the batch.
    """

    def __init__(
        self,
        policy: PolicyRules,
        period: str,
        lookups: Lookups,
        today: dt.date,
        *,
        file_checks_only: bool = False,
        claims_made: bool = False,
    ) -> None:
        """``file_checks_only`` runs only what the file itself can show:
        formats, the policy limit and duplicates within the file. It is for
        departments checking a file offline, where the registry, the
        reference lists and earlier batches are out of reach.

        ``claims_made`` promises that the caller claims every accepted person
        through ``lookups`` before it checks the next record, as a stored
        submission does. ``Lookups.claimed_in_batch`` then catches a person
        named twice, and the checker's memory stays flat in the batch's size.
        Without it (offline checks, dry runs) the checker remembers each
        accepted person itself, about 90 bytes per record."""
        self._policy = policy
        self._period = period
        self._lookups = lookups
        self._today = today
        self._file_checks_only = file_checks_only
        self._claims_made = claims_made
        self._accepted_people: set[bytes] = set()

    def forget(self, verdict: Verdict) -> None:
        """Release the claim an accepted verdict made on its person.

        For a check made outside this class (a correction's target) that
        refuses a record the rules accepted: a later record of the same
        person in the batch must not be refused as its duplicate. With
        ``claims_made`` there is nothing here to release: the caller must
        claim a person only once every check, this one included, has passed.
        """
        if verdict.person is not None:
            self._accepted_people.discard(verdict.person)

    def check_row(self, row: SourceRow) -> Verdict:
        """Check a record as read from a department file."""
        return self.check(
            name=row.name,
            id_number=row.id_number,
            account_number=row.account_number,
            amount=row.amount,
            proxy_name=row.proxy_name,
            proxy_id_number=row.proxy_id_number,
        )

    def check(
        self,
        *,
        name: str,
        id_number: str,
        account_number: str,
        amount: str | int | None,
        proxy_name: str = "",
        proxy_id_number: str = "",
    ) -> Verdict:
        """Check one record. ``amount`` is the yuan text as the department
        wrote it, or already a number of fen."""
        lookups = self._lookups
        policy = self._policy
        reasons: list[ReasonCode] = []

        # 1. The person: no valid ID number, no person.
        stored_as_number = id_number_looks_numeric(id_number)
        id_norm = normalize_id_number(id_number)
        person: bytes | None = None
        if not stored_as_number and check_id_number(id_norm, self._today):
            person = lookups.person_digest(id_norm)
        else:
            reasons.append(ReasonCode.ID_INVALID)

        # 2. Name and amount.
        name_norm = normalize_name(name)
        if not name_valid(name_norm):
            reasons.append(ReasonCode.NAME_INVALID)
        amount_fen = _amount_fen(amount)
        if amount_fen is None or amount_fen <= 0:
            reasons.append(ReasonCode.AMOUNT_INVALID)
        elif amount_fen > policy.max_amount_fen:
            reasons.append(ReasonCode.AMOUNT_OVER_LIMIT)

        # 3-5. Duplicates and reference lists. A person who already has a
        # valid record here has claimed the period with it, so the store's
        # claim is this batch's own and not a DUPLICATE_PAID.
        entry: RegistryEntry | None = None
        store = not self._file_checks_only
        if person is not None:
            if person in self._accepted_people or lookups.claimed_in_batch(person):
                reasons.append(ReasonCode.DUPLICATE_IN_BATCH)
            elif store and lookups.already_claimed(
                person, policy.policy_code, self._period
            ):
                reasons.append(ReasonCode.DUPLICATE_PAID)
            if store:
                reasons.extend(self._list_reasons(person))
                entry = lookups.registry_entry(person)

        # 6-7. The account. Offline, only its form can be judged.
        account_norm = normalize_account(account_number)
        account: bytes | None = None
        if account_well_formed(account_norm):
            account = lookups.account_digest(account_norm)
        if store:
            reasons.extend(_account_reasons(person, entry, account_norm, account))
        elif account is None:
            reasons.append(ReasonCode.ACCOUNT_INVALID)

        # 8. The proxy. Most records name none; skip normalising nothing.
        proxy_name_norm = normalize_name(proxy_name) if proxy_name else ""
        proxy_id_norm = normalize_id_number(proxy_id_number) if proxy_id_number else ""
        if not self._proxy_ok(
            person if store else None, entry, proxy_name_norm, proxy_id_norm
        ):
            reasons.append(ReasonCode.PROXY_INVALID)

        # 9. Only a record that passes every check claims its person; the
        #    caller's claim does it when it promised to make one.
        if person is not None and not reasons and not self._claims_made:
            self._accepted_people.add(person)

        return Verdict(
            reasons=tuple(ordered(reasons)) if len(reasons) > 1 else tuple(reasons),
            person=person,
            account=account,
            id_number=id_norm,
            name=name_norm,
            account_number=account_norm,
            amount_fen=amount_fen,
            proxy_name=proxy_name_norm,
            proxy_id_number=proxy_id_norm,
            id_stored_as_number=stored_as_number,
        )

    def _list_reasons(self, person: bytes) -> list[ReasonCode]:
        on_list = self._lookups.on_list
        policy = self._policy
        reasons = []
        if on_list(DECEASED_LIST, person):
            reasons.append(ReasonCode.DECEASED)
        if policy.requires_list and not on_list(policy.requires_list, person):
            reasons.append(ReasonCode.NOT_ELIGIBLE)
        if policy.excludes_list and on_list(policy.excludes_list, person):
            reasons.append(ReasonCode.EXCLUDED)
        return reasons

    def _proxy_ok(
        self,
        person: bytes | None,
        entry: RegistryEntry | None,
        proxy_name: str,
        proxy_id: str,
    ) -> bool:
        # 1. The record's own proxy details: both or neither, both valid.
        if not proxy_name and not proxy_id:
            proxy: bytes | None = None
        elif not (
            name_valid(proxy_name)
            and not id_number_looks_numeric(proxy_id)
            and check_id_number(proxy_id, self._today)
        ):
            return False
        else:
            proxy = self._lookups.person_digest(proxy_id)
            if person is not None and hmac.compare_digest(proxy, person):
                return False

        # 2. Against the registry, when the person is known.
        if person is None:
            return True
        registered = entry.proxy_person_digest if entry is not None else None
        if registered is None or proxy is None:
            return registered is None and proxy is None
        return hmac.compare_digest(proxy, registered)


def _account_reasons(
    person: bytes | None,
    entry: RegistryEntry | None,
    digits: str,
    account: bytes | None,
) -> list[ReasonCode]:
    # 1. Malformed. Without a registry entry that is a second, independent
    #    problem; with one, "not registered" would only repeat it.
    if account is None:
        if person is not None and entry is None:
            return [ReasonCode.ACCOUNT_INVALID, ReasonCode.ACCOUNT_NOT_REGISTERED]
        return [ReasonCode.ACCOUNT_INVALID]

    # 2. Without a valid ID number there is no registry entry to compare with,
    #    and no way to know whether a Luhn failure is a passbook or a typo.
    if person is None:
        return []
    if entry is None:
        return [ReasonCode.ACCOUNT_NOT_REGISTERED]

    # 3. The registered account is accepted whatever Luhn says. Another
    #    number where a card is registered, failing Luhn, is a mistyped card.
    if hmac.compare_digest(account, entry.account_digest):
        return []
    if entry.account_kind != PASSBOOK_KIND and not luhn_ok(digits):
        return [ReasonCode.ACCOUNT_INVALID]
    return [ReasonCode.ACCOUNT_NOT_REGISTERED]


def _amount_fen(amount: str | int | None) -> int | None:
    if amount is None or isinstance(amount, bool):
        return None
    if isinstance(amount, int):
        return amount
    return parse_amount_fen(amount)
