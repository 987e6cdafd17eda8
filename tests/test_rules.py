"""The preset rules of Art. 18, against an in-memory registry and lists.

Every person here is invented: ID numbers and card numbers are built with
python-stdnum's check-digit functions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass, field

import pytest
from stdnum import luhn
from stdnum.cn import ric

from gateway.files import SourceRow
from gateway.reasons import ReasonCode
from gateway.rules import (
    DECEASED_LIST,
    BatchChecker,
    PolicyRules,
    RegistryEntry,
    Verdict,
)

R = ReasonCode
TODAY = dt.date(2026, 6, 1)
PERIOD = "2026-06"
POLICY = PolicyRules(
    policy_code="CQ-TEST-001",
    max_amount_fen=50000,
    requires_list=None,
    excludes_list="public-servants",
)
REQUIRES_DISABLED = PolicyRules("CQ-TEST-002", 50000, "disabled", None)


def make_id(region: str = "500154", born: str = "19620517", order: str = "123") -> str:
    body = region + born + order
    return body + ric.calc_check_digit(body + "0")


def make_card(serial: int, *, valid: bool = True) -> str:
    partial = f"621459{serial:012d}"
    check = luhn.calc_check_digit(partial)
    if not valid:
        check = str((int(check) + 5) % 10)
    return partial + check


def make_passbook(serial: int) -> str:
    number = f"1{serial:017d}"
    return number if not luhn.is_valid(number) else number[:-1] + "7"


@dataclass
class FakeLookups:
    """The store, in memory. Digests are plain SHA-256 here; the real ones
    are keyed."""

    registry: dict[bytes, RegistryEntry] = field(default_factory=dict)
    lists: dict[str, set[bytes]] = field(default_factory=dict)
    claims: set[tuple[bytes, str, str]] = field(default_factory=set)
    batch_claims: set[bytes] = field(default_factory=set)
    calls: Counter[str] = field(default_factory=Counter)

    def person_digest(self, normalised_id: str) -> bytes:
        self.calls["person_digest"] += 1
        return hashlib.sha256(b"person:" + normalised_id.encode()).digest()

    def account_digest(self, digits: str) -> bytes:
        self.calls["account_digest"] += 1
        return hashlib.sha256(b"account:" + digits.encode()).digest()

    def registry_entry(self, person: bytes) -> RegistryEntry | None:
        self.calls["registry_entry"] += 1
        return self.registry.get(person)

    def on_list(self, list_name: str, person: bytes) -> bool:
        self.calls["on_list"] += 1
        return person in self.lists.get(list_name, set())

    def already_claimed(self, person: bytes, policy_code: str, period: str) -> bool:
        self.calls["already_claimed"] += 1
        return (person, policy_code, period) in self.claims

    def claimed_in_batch(self, person: bytes) -> bool:
        self.calls["claimed_in_batch"] += 1
        return person in self.batch_claims

    # Setting up the world, without counting calls.

    def register(
        self, id_number: str, account: str, kind: str = "社保卡", proxy: str = ""
    ) -> None:
        person = hashlib.sha256(b"person:" + id_number.encode()).digest()
        self.registry[person] = RegistryEntry(
            bank_code="CQRCB",
            account_digest=hashlib.sha256(b"account:" + account.encode()).digest(),
            account_kind=kind,
            proxy_person_digest=(
                hashlib.sha256(b"person:" + proxy.encode()).digest() if proxy else None
            ),
        )

    def put_on(self, list_name: str, id_number: str) -> None:
        person = hashlib.sha256(b"person:" + id_number.encode()).digest()
        self.lists.setdefault(list_name, set()).add(person)

    def claim(self, id_number: str, policy: PolicyRules) -> None:
        person = hashlib.sha256(b"person:" + id_number.encode()).digest()
        self.claims.add((person, policy.policy_code, PERIOD))


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str
    account: str
    proxy_name: str = ""
    proxy_id_number: str = ""


OK = Person("张三", make_id(order="101"), make_card(1))
ODD_CARD = Person("李四", make_id(order="102"), make_card(2, valid=False))
PASSBOOK = Person("王五", make_id(order="103"), make_passbook(3))
PROXIED = Person(
    "赵六", make_id(order="104"), make_card(4), "钱七", make_id(order="204")
)
DECEASED = Person("孙八", make_id(order="105"), make_card(5))
SERVANT = Person("周九", make_id(order="106"), make_card(6))
DISABLED = Person("吴十", make_id(order="107"), make_card(7))
PAID = Person("郑一", make_id(order="108"), make_card(8))
UNREGISTERED = Person("冯二", make_id(order="109"), make_card(9))
ELDERLY = Person("陈三", make_id("500154", "19301101", "110"), make_card(10))
MINORITY = Person("阿依古丽·买买提", make_id(order="111"), make_card(11))
STRANGER = Person("褚四", make_id(order="212"), make_card(12))
OTHER_CARD = make_card(99)


def build_world() -> FakeLookups:
    world = FakeLookups()
    for person in (OK, DECEASED, SERVANT, DISABLED, PAID, ELDERLY, MINORITY):
        world.register(person.id_number, person.account)
    world.register(ODD_CARD.id_number, ODD_CARD.account, "社保卡")
    world.register(PASSBOOK.id_number, PASSBOOK.account, "存折")
    world.register(PROXIED.id_number, PROXIED.account, proxy=PROXIED.proxy_id_number)
    world.put_on(DECEASED_LIST, DECEASED.id_number)
    world.put_on("public-servants", SERVANT.id_number)
    world.put_on("disabled", DISABLED.id_number)
    world.claim(PAID.id_number, POLICY)
    return world


def record(person: Person, **changes: str | int | None) -> dict[str, str | int | None]:
    fields: dict[str, str | int | None] = {
        "name": person.name,
        "id_number": person.id_number,
        "account_number": person.account,
        "amount": "300.00",
        "proxy_name": person.proxy_name,
        "proxy_id_number": person.proxy_id_number,
    }
    fields.update(changes)
    return fields


def check_one(
    fields: dict[str, str | int | None], policy: PolicyRules = POLICY
) -> Verdict:
    checker = BatchChecker(policy, PERIOD, build_world(), TODAY)
    return checker.check(**fields)  # type: ignore[arg-type]


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


# --- one record at a time --------------------------------------------------

CASES = [
    # Accepted.
    pytest.param(record(OK), POLICY, (), id="accepted"),
    pytest.param(record(ODD_CARD), POLICY, (), id="registered-card-failing-luhn-paid"),
    pytest.param(record(PASSBOOK), POLICY, (), id="registered-passbook-no-check-digit"),
    pytest.param(record(PROXIED), POLICY, (), id="registered-proxy-named"),
    pytest.param(record(ELDERLY), POLICY, (), id="county-code-newer-than-birth"),
    pytest.param(record(MINORITY), POLICY, (), id="minority-name-with-middle-dot"),
    pytest.param(
        record(MINORITY, name="阿依古丽 • 买买提"), POLICY, (), id="middle-dot-variant"
    ),
    pytest.param(
        record(
            OK,
            id_number=" " + fullwidth(OK.id_number) + " ",
            account_number=OK.account[:8] + " " + fullwidth(OK.account[8:]),
        ),
        POLICY,
        (),
        id="fullwidth-and-spaces-normalised",
    ),
    pytest.param(record(OK, amount="500.00"), POLICY, (), id="amount-at-limit"),
    pytest.param(
        record(OK, amount="¥1,00.00"), POLICY, (R.AMOUNT_INVALID,), id="bad-grouping"
    ),
    pytest.param(
        record(OK, amount="84.15000000000001"), POLICY, (), id="float-artifact"
    ),
    pytest.param(record(OK, amount=30000), POLICY, (), id="amount-in-fen"),
    pytest.param(
        record(SERVANT), REQUIRES_DISABLED, (R.NOT_ELIGIBLE,), id="not-eligible"
    ),
    pytest.param(record(DISABLED), REQUIRES_DISABLED, (), id="on-required-list"),
    pytest.param(
        record(SERVANT),
        PolicyRules("CQ-TEST-003", 50000, None, None),
        (),
        id="listed-but-policy-excludes-nobody",
    ),
    # ID number.
    pytest.param(
        record(
            OK, id_number=OK.id_number[:-1] + ("1" if OK.id_number[-1] != "1" else "2")
        ),
        POLICY,
        (R.ID_INVALID,),
        id="id-wrong-check-char",
    ),
    pytest.param(
        record(OK, id_number=make_id(born="19620230")),
        POLICY,
        (R.ID_INVALID,),
        id="id-impossible-birth-date",
    ),
    pytest.param(
        record(OK, id_number=make_id(born="20270101")),
        POLICY,
        (R.ID_INVALID,),
        id="id-born-in-future",
    ),
    pytest.param(
        record(OK, id_number=make_id(region="990154")),
        POLICY,
        (R.ID_INVALID,),
        id="id-unknown-province",
    ),
    pytest.param(
        record(OK, id_number="5.00154E+17"),
        POLICY,
        (R.ID_INVALID,),
        id="id-stored-as-number",
    ),
    pytest.param(record(OK, id_number=""), POLICY, (R.ID_INVALID,), id="id-empty"),
    pytest.param(
        record(PASSBOOK, id_number="123"),
        POLICY,
        (R.ID_INVALID,),
        id="id-invalid-passbook-not-judged-by-luhn",
    ),
    pytest.param(
        record(OK, id_number="123", account_number="12345"),
        POLICY,
        (R.ID_INVALID, R.ACCOUNT_INVALID),
        id="id-invalid-account-malformed",
    ),
    # Name and amount.
    pytest.param(record(OK, name=""), POLICY, (R.NAME_INVALID,), id="name-empty"),
    pytest.param(record(OK, name="张三2"), POLICY, (R.NAME_INVALID,), id="name-digit"),
    pytest.param(
        record(OK, amount="0.00"), POLICY, (R.AMOUNT_INVALID,), id="amount-zero"
    ),
    pytest.param(
        record(OK, amount="-300.00"), POLICY, (R.AMOUNT_INVALID,), id="amount-negative"
    ),
    pytest.param(
        record(OK, amount="壹仟元"), POLICY, (R.AMOUNT_INVALID,), id="amount-chinese"
    ),
    pytest.param(
        record(OK, amount="abc"), POLICY, (R.AMOUNT_INVALID,), id="amount-text"
    ),
    pytest.param(record(OK, amount=""), POLICY, (R.AMOUNT_INVALID,), id="amount-empty"),
    pytest.param(
        record(OK, amount=None), POLICY, (R.AMOUNT_INVALID,), id="amount-none"
    ),
    pytest.param(
        record(OK, amount="84.151"), POLICY, (R.AMOUNT_INVALID,), id="amount-3-decimals"
    ),
    pytest.param(
        record(OK, amount="500.01"),
        POLICY,
        (R.AMOUNT_OVER_LIMIT,),
        id="amount-over-limit",
    ),
    pytest.param(
        record(OK, amount=50001), POLICY, (R.AMOUNT_OVER_LIMIT,), id="fen-over-limit"
    ),
    # Duplicates and lists.
    pytest.param(record(PAID), POLICY, (R.DUPLICATE_PAID,), id="already-paid"),
    pytest.param(
        record(PAID),
        PolicyRules("CQ-TEST-003", 50000, None, None),
        (),
        id="paid-under-another-policy",
    ),
    pytest.param(record(DECEASED), POLICY, (R.DECEASED,), id="deceased"),
    pytest.param(record(SERVANT), POLICY, (R.EXCLUDED,), id="excluded"),
    # Account.
    pytest.param(
        record(OK, account_number=OTHER_CARD),
        POLICY,
        (R.ACCOUNT_NOT_REGISTERED,),
        id="other-valid-card",
    ),
    pytest.param(
        record(
            OK, account_number=OK.account[:-1] + str((int(OK.account[-1]) + 3) % 10)
        ),
        POLICY,
        (R.ACCOUNT_INVALID,),
        id="mistyped-card-fails-luhn",
    ),
    pytest.param(
        record(PASSBOOK, account_number=make_passbook(33)),
        POLICY,
        (R.ACCOUNT_NOT_REGISTERED,),
        id="other-number-where-passbook-registered",
    ),
    pytest.param(
        record(OK, account_number="6.21459E+18"),
        POLICY,
        (R.ACCOUNT_INVALID,),
        id="account-stored-as-number",
    ),
    pytest.param(
        record(OK, account_number="123456789"),
        POLICY,
        (R.ACCOUNT_INVALID,),
        id="account-9-digits",
    ),
    pytest.param(
        record(OK, account_number=""), POLICY, (R.ACCOUNT_INVALID,), id="account-empty"
    ),
    pytest.param(
        record(UNREGISTERED),
        POLICY,
        (R.ACCOUNT_NOT_REGISTERED,),
        id="no-one-card-account",
    ),
    pytest.param(
        record(UNREGISTERED, account_number=make_passbook(9)),
        POLICY,
        (R.ACCOUNT_NOT_REGISTERED,),
        id="no-registration-luhn-not-judged",
    ),
    pytest.param(
        record(UNREGISTERED, account_number="abc"),
        POLICY,
        (R.ACCOUNT_INVALID, R.ACCOUNT_NOT_REGISTERED),
        id="no-registration-and-malformed",
    ),
    # Proxy (Art. 13).
    pytest.param(
        record(PROXIED, proxy_name="", proxy_id_number=""),
        POLICY,
        (R.PROXY_INVALID,),
        id="registered-proxy-not-named",
    ),
    pytest.param(
        record(PROXIED, proxy_name=STRANGER.name, proxy_id_number=STRANGER.id_number),
        POLICY,
        (R.PROXY_INVALID,),
        id="another-proxy-named",
    ),
    pytest.param(
        record(PROXIED, proxy_name="钱七", proxy_id_number=""),
        POLICY,
        (R.PROXY_INVALID,),
        id="proxy-half-filled-name-only",
    ),
    pytest.param(
        record(PROXIED, proxy_name=""),
        POLICY,
        (R.PROXY_INVALID,),
        id="proxy-half-filled-id-only",
    ),
    pytest.param(
        record(PROXIED, proxy_name="钱7"),
        POLICY,
        (R.PROXY_INVALID,),
        id="proxy-name-invalid",
    ),
    pytest.param(
        record(PROXIED, proxy_id_number=PROXIED.proxy_id_number[:-1] + "Z"),
        POLICY,
        (R.PROXY_INVALID,),
        id="proxy-id-invalid",
    ),
    pytest.param(
        record(PROXIED, proxy_id_number="5.00154E+17"),
        POLICY,
        (R.PROXY_INVALID,),
        id="proxy-id-stored-as-number",
    ),
    pytest.param(
        record(OK, proxy_name=STRANGER.name, proxy_id_number=STRANGER.id_number),
        POLICY,
        (R.PROXY_INVALID,),
        id="proxy-named-none-registered",
    ),
    pytest.param(
        record(OK, proxy_name=OK.name, proxy_id_number=OK.id_number),
        POLICY,
        (R.PROXY_INVALID,),
        id="beneficiary-as-own-proxy",
    ),
    pytest.param(
        record(
            PROXIED,
            proxy_name="钱  七",
            proxy_id_number=fullwidth(PROXIED.proxy_id_number),
        ),
        POLICY,
        (),
        id="proxy-details-normalised",
    ),
    # Several at once, in priority order.
    pytest.param(
        record(DECEASED, name="", amount="9999", account_number=OTHER_CARD),
        POLICY,
        (R.NAME_INVALID, R.AMOUNT_OVER_LIMIT, R.DECEASED, R.ACCOUNT_NOT_REGISTERED),
        id="several-reasons-in-priority-order",
    ),
    pytest.param(
        record(SERVANT, amount="0", proxy_name="钱七"),
        REQUIRES_DISABLED,
        (R.AMOUNT_INVALID, R.NOT_ELIGIBLE, R.PROXY_INVALID),
        id="several-with-required-list",
    ),
]


@pytest.mark.parametrize(("fields", "policy", "expected"), CASES)
def test_one_record(
    fields: dict[str, str | int | None],
    policy: PolicyRules,
    expected: tuple[ReasonCode, ...],
) -> None:
    verdict = check_one(fields, policy)
    assert verdict.reasons == expected
    assert verdict.accepted is (expected == ())
    assert verdict.primary_reason == (expected[0] if expected else None)


def test_verdict_carries_normalised_values_and_digests() -> None:
    world = build_world()
    checker = BatchChecker(POLICY, PERIOD, world, TODAY)
    legacy = OK.id_number[:6] + OK.id_number[8:17]  # the same person, 15 digits

    verdict = checker.check(
        name=" 张  三 ",
        id_number=legacy,
        account_number=" ".join(OK.account[i : i + 4] for i in range(0, 19, 4)),
        amount="¥ 300.5",
    )

    assert verdict.id_number == OK.id_number
    assert verdict.name == "张三"
    assert verdict.account_number == OK.account
    assert verdict.amount_fen == 30050
    assert verdict.person == world.person_digest(OK.id_number)
    assert verdict.account == world.account_digest(OK.account)
    assert verdict.proxy_name == verdict.proxy_id_number == ""
    assert verdict.accepted


def test_legacy_15_digit_number_is_the_same_person() -> None:
    # The 15-digit form of OK's number: region, 2-digit year, date, order.
    legacy = OK.id_number[:6] + OK.id_number[8:17]
    assert check_one(record(OK, id_number=legacy)).accepted


def test_invalid_id_has_no_person_and_flags_stored_as_number() -> None:
    verdict = check_one(record(OK, id_number="5.00154E+17"))
    assert verdict.person is None
    assert verdict.id_stored_as_number
    assert not check_one(record(OK, id_number="123")).id_stored_as_number


def test_malformed_account_has_no_account_digest() -> None:
    assert check_one(record(OK, account_number="12-34")).account is None


def test_bool_is_not_an_amount() -> None:
    assert check_one(record(OK, amount=True)).reasons == (R.AMOUNT_INVALID,)


def test_check_row_reads_a_source_row() -> None:
    checker = BatchChecker(POLICY, PERIOD, build_world(), TODAY)
    row = SourceRow(
        row=1,
        name=PROXIED.name,
        id_number=PROXIED.id_number,
        account_number=PROXIED.account,
        amount="300.00",
        bank_name="重庆农村商业银行",
        proxy_name=PROXIED.proxy_name,
        proxy_id_number=PROXIED.proxy_id_number,
    )
    assert checker.check_row(row).accepted


# --- a batch: duplicates within it -----------------------------------------


class TestDuplicatesInBatch:
    def run(
        self, *records: dict[str, str | int | None]
    ) -> list[tuple[ReasonCode, ...]]:
        checker = BatchChecker(POLICY, PERIOD, build_world(), TODAY)
        return [checker.check(**r).reasons for r in records]  # type: ignore[arg-type]

    def test_first_valid_record_proceeds_later_ones_refused(self) -> None:
        assert self.run(record(OK), record(OK), record(OK, amount="100")) == [
            (),
            (R.DUPLICATE_IN_BATCH,),
            (R.DUPLICATE_IN_BATCH,),
        ]

    def test_a_refused_first_record_reserves_nothing(self) -> None:
        assert self.run(record(OK, amount="0"), record(OK), record(OK)) == [
            (R.AMOUNT_INVALID,),
            (),
            (R.DUPLICATE_IN_BATCH,),
        ]

    def test_same_person_written_differently_is_a_duplicate(self) -> None:
        legacy = OK.id_number[:6] + OK.id_number[8:17]
        assert self.run(record(OK), record(OK, id_number=fullwidth(legacy))) == [
            (),
            (R.DUPLICATE_IN_BATCH,),
        ]

    def test_duplicate_lists_its_other_problems_too(self) -> None:
        assert self.run(
            record(OK), record(OK, amount="600", account_number=OTHER_CARD)
        ) == [
            (),
            (R.AMOUNT_OVER_LIMIT, R.DUPLICATE_IN_BATCH, R.ACCOUNT_NOT_REGISTERED),
        ]

    def test_own_claim_in_store_is_not_duplicate_paid(self) -> None:
        # The store records a claim for every accepted record, as the server
        # does; the batch's own claim must not read as an earlier payment.
        world = build_world()
        checker = BatchChecker(POLICY, PERIOD, world, TODAY)
        first = checker.check(**record(OK))  # type: ignore[arg-type]
        assert first.accepted
        assert first.person is not None
        world.claims.add((first.person, POLICY.policy_code, PERIOD))
        second = checker.check(**record(OK))  # type: ignore[arg-type]
        assert second.reasons == (R.DUPLICATE_IN_BATCH,)

    def test_a_caller_that_claims_is_asked_for_the_batch_claims(self) -> None:
        # A stored submission claims each accepted person as it goes; the
        # checker then asks the batch's claims instead of remembering people.
        world = build_world()
        checker = BatchChecker(POLICY, PERIOD, world, TODAY, claims_made=True)
        first = checker.check(**record(OK))  # type: ignore[arg-type]
        other = checker.check(**record(MINORITY))  # type: ignore[arg-type]
        assert first.person is not None
        assert other.person is not None
        assert first.accepted
        assert other.accepted
        for person in (first.person, other.person):
            world.claims.add((person, POLICY.policy_code, PERIOD))
        world.batch_claims.add(first.person)

        again = checker.check(**record(OK))  # type: ignore[arg-type]
        earlier = checker.check(**record(MINORITY))  # type: ignore[arg-type]

        assert again.reasons == (R.DUPLICATE_IN_BATCH,)
        assert earlier.reasons == (R.DUPLICATE_PAID,)

    def test_different_people_are_not_duplicates(self) -> None:
        assert self.run(record(OK), record(MINORITY), record(ELDERLY)) == [(), (), ()]

    def test_checkers_do_not_share_batches(self) -> None:
        world = build_world()
        for _ in range(2):
            checker = BatchChecker(POLICY, PERIOD, world, TODAY)
            assert checker.check(**record(OK)).accepted  # type: ignore[arg-type]


# --- cost: each digest once, each lookup once -------------------------------


@pytest.mark.parametrize(
    ("fields", "policy", "expected_calls"),
    [
        pytest.param(
            record(OK),
            POLICY,
            {
                "person_digest": 1,
                "account_digest": 1,
                "registry_entry": 1,
                "claimed_in_batch": 1,
                "already_claimed": 1,
                "on_list": 2,
            },
            id="plain-record",
        ),
        pytest.param(
            record(PROXIED),
            REQUIRES_DISABLED,
            {
                "person_digest": 2,
                "account_digest": 1,
                "registry_entry": 1,
                "claimed_in_batch": 1,
                "already_claimed": 1,
                "on_list": 2,
            },
            id="with-proxy",
        ),
        pytest.param(
            record(OK, id_number="bad", account_number="bad"),
            POLICY,
            {},
            id="nothing-to-look-up",
        ),
    ],
)
def test_each_digest_and_lookup_runs_once(
    fields: dict[str, str | int | None],
    policy: PolicyRules,
    expected_calls: dict[str, int],
) -> None:
    world = build_world()
    BatchChecker(policy, PERIOD, world, TODAY).check(**fields)  # type: ignore[arg-type]
    assert dict(world.calls) == expected_calls
