"""Attacks on the gateway's newest surfaces, made as a hostile agent bank,
department, implementing unit or insider would make them.

``tests/test_attacks.py`` attacks envelopes, batch streams and bank answers
over gRPC; this module attacks what came after them: the file exchange with
file-connected agent banks, the account registry, ``GetRecord``, funds
releases, corrections and dry runs. Every attack runs against a real gateway
on port 0 over real mutual TLS, with real certificates and fictional people
only (``tests.fakes``).

For each attack the test asserts:

1. the exact refusal. Over gRPC: the status and the safe message it carries.
   For a file: it was moved to ``refused/`` together with its signature, a
   ``.why`` note names the error class and its message, it is gone from
   ``from-bank``, and exactly one inbound-file dead letter was counted;
2. the refusal (details, trailing metadata, ``.why`` note) carries no name,
   ID number or account of any fictional person the gateway holds;
3. nothing stored changed: a dump of every table, before and after, is
   identical. Corrections are the one surface that refuses a record inside an
   accepted batch; there the dump may only gain rows, and only rows of the
   new batch.

Threats these worlds stand for: an agent bank that reports on, acknowledges
or answers for what is not its own, or smuggles paths, symlinks, replays
and huge files into its exchange folder; a unit that declares or reviews
beyond its reach; a finance bureau that confirms or releases for another
county; a department that guesses record ids, crafts correction targets or
replays a dry run; an insider who asks for personal data in clear.

Three kinds of world; the first and the last are started once per module:

* ``arena`` (gRPC): county 500154 pays CQ-NY-001 through CQRCB. Batch
  ``released`` has its funds released, batch ``held`` does not (its
  instruction set is HELD), ``mine.r1`` is the department's own rejected
  record and ``foreign.r1`` a rejected record of county 500110's
  department. The registry holds one declaration in each of DECLARED,
  REVIEWED and CONFIRMED. The gateway's clock is injected.
* ``leased_checks`` (files, per test): a fixed-width world stopped while
  PSBC's check file is in to-bank, leased and not acknowledged.
* ``world`` (files), once per file style: county 500154 pays through PSBC by
  files, county 500110 through CQRCB by gRPC. PSBC has acknowledged its
  instruction set ``b-1.i0``; the result file its bank runner wrote is held
  back by the test, so ``b-1``'s records wait INSTRUCTED. ``held.i0`` was
  never delivered; CQRCB holds a lease on ``other.i0``. The test drives the
  gateway's ``FileDelivery`` round by round, in its own thread: no timing.

Four findings of this suite are fixed, and their tests now assert the fix:
links in the exchange folders are refused, never followed, and a note or
acknowledgement is never written or read through one; an acknowledgement
must name a file of the right kind.

Attack classes and the refusal each gets:

=====================================================  =============================
attack                                                 refusal
=====================================================  =============================
file: result file for another bank's instructions      refused/, NotFoundError
(fixed-width), pain.002 naming another bank's
EndToEndId (ISO 20022)
file: result for an own instruction never delivered    refused/, NotFoundError
file: fixed-width result header naming another bank    refused/, ValueError
file: acknowledgement naming ``../`` or an absolute    refused/, ValueError
path
file: acknowledgement of a set never delivered         refused/, PreconditionError
file: acknowledgement of another bank's set            refused/, NotFoundError
file: acknowledgement naming a set under the other     refused/, NotFoundError
kind's suffix (``b-1.c0.ins`` for a check set)
file: to-bank's file replaced by a symlink, then an    refused/, EnvelopeError (not a
acknowledgement guessing the target's digest           regular file); no comparison
file: ``refused/<name>.why`` planted as a symlink,     the note replaces the link;
then a file the gateway refuses                        the target is untouched
file: answers replaying the gateway's own signed set   refused/, EnvelopeError
file: answers signed (outside) by another bank         refused/, UntrustedSignerError
file: answers whose inner envelope another bank        refused/, PermissionDeniedError
signed
file: answers for another bank's check set             refused/, NotFoundError
file: result file signed as an acknowledgement         refused/, EnvelopeError
file: over MAX_FILE_BYTES                              refused/, FileTooLargeError
file: symlinks (file and signature) to a valid         not read, not followed; moved
signed file outside the folder                         to refused/, one dead letter
registry: a card of another bank's prefix              INVALID_ARGUMENT
registry: review of another unit's declaration         NOT_FOUND
registry: confirmation by another county's finance     NOT_FOUND
registry: re-confirming or refusing a confirmed one    FAILED_PRECONDITION
registry: a second declaration while one is open       ALREADY_EXISTS
GetRecord: another department's record, guessed        NOT_FOUND, same message as
                                                       for an id that does not exist
GetRecord: unmask by finance without the permission,   PERMISSION_DENIED
or by an auditor
GetRecord: SQL metacharacters, a 1 MiB id              NOT_FOUND
funds release: in the future; before the batch         INVALID_ARGUMENT
funds release: by another county's finance            NOT_FOUND
funds release: a second one with another time          OK, already recorded; the
                                                       first time and pay-by stay
correction of another department's record, or of an   batch accepted, that record
id crafted to look like a correctable one              REJECTED CORRECTION_INVALID
dry-run manifest replayed to SubmitBatch, or a         INVALID_ARGUMENT
submission manifest sent to ValidateBatch
dry run by an agent bank                               PERMISSION_DENIED
=====================================================  =============================
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import io
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from sqlalchemy import insert, select

from connectors import exchange_files, fixed_width, iso20022
from connectors.file_gateway import FileDelivery
from connectors.file_protocol import ANSWERS, Style
from gateway.client import (
    ClientCredentials,
    build_submission,
    open_channel,
    record_funds_release,
    submit,
)
from gateway.core import GATEWAY_AUDIENCE
from gateway.envelope import seal
from gateway.errors import EnvelopeError
from gateway.states import RecordState, SetKind, SetState
from gateway.store import schema
from keys.identity import Role
from tests.conftest import Running
from tests.fakes import Person, make_card, people
from tests.test_attacks import dump
from tests.test_authz_matrix import METHODS as RPC
from tests.test_authz_matrix import OffsetClock, start_gateway
from tests.test_file_connectors import (
    Bank,
    bank_for,
    batch_state,
    dead_letters,
    delivery_for,
    entries,
    record_states,
    result_count,
    set_states,
    start_exchange_gateway,
    submit_released,
)
from tests.test_submission import records_for, requests_for
from ykt.v1 import batch_pb2, exchange_pb2, registry_pb2, services_pb2

DEPARTMENT = "500154-NYNC"
SAME_COUNTY_DEPARTMENT = "500154-JYW"
OTHER_COUNTY = "500110"
OTHER_DEPARTMENT = f"{OTHER_COUNTY}-NYNC"
FINANCE = "500154"
UNMASKER = "500154-CZ"
AUDITOR = "AUDIT-1"
UNIT = "500154-HANFENG"
OTHER_UNIT = "500154-ZHAOJIA"
POLICY = "CQ-NY-001"
GRPC_BANK = "CQRCB"
FILE_BANK = "PSBC"
# A second bank in the registry's reference data, with cards of its own prefix.
ABC, ABC_PREFIX = "ABC", "622848"
OWN_PREFIX = "621459"

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
EXISTS = grpc.StatusCode.ALREADY_EXISTS


# -- calling the gateway -----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a call came back with: a status, its details, and the response
    (the list of responses for a response stream) when it succeeded."""

    code: grpc.StatusCode
    details: str = ""
    metadata: tuple[Any, ...] = ()
    response: Any = None


def call(
    running: Running, credentials: ClientCredentials, rpc: str, request: Any
) -> Outcome:
    """Call any RPC by name; a client stream takes a list of requests."""
    method = RPC[f"ykt.v1.{rpc}"]
    path = f"/{method.containing_service.full_name}/{method.name}"
    kwargs: dict[str, Any] = {
        "request_serializer": lambda m: m.SerializeToString(),
        "response_deserializer": message_factory.GetMessageClass(
            method.output_type
        ).FromString,
    }

    with open_channel(running.target, credentials, timeout=60) as channel:
        try:
            if method.client_streaming and method.server_streaming:
                stream = channel.stream_stream(path, **kwargs)(iter(request))
                response: Any = list(stream)
            elif method.client_streaming:
                response = channel.stream_unary(path, **kwargs)(iter(request))
            elif method.server_streaming:
                response = list(channel.unary_stream(path, **kwargs)(request))
            else:
                response = channel.unary_unary(path, **kwargs)(request)
        except grpc.RpcError as exc:
            return Outcome(
                exc.code(), exc.details() or "", tuple(exc.trailing_metadata() or ())
            )
    return Outcome(OK, response=response)


def sealed_now(credentials: ClientCredentials, message: Any, subject_id: str) -> Any:
    return seal(
        credentials.signer(),
        message,
        audience=GATEWAY_AUDIENCE,
        subject_id=subject_id,
        now=dt.datetime.now(dt.UTC),
    )


def confirm_every_check(running: Running, bank: ClientCredentials) -> list[str]:
    """The gRPC bank pulls its account checks and confirms each; the set ids."""
    pulled = call(
        running,
        bank,
        "BankService/PullAccountChecks",
        services_pb2.PullAccountChecksRequest(max_sets=50),
    )
    assert pulled.code is OK
    answered = []
    for leased in pulled.response.sets:
        checks = exchange_pb2.AccountCheckSet.FromString(leased.set.payload)
        set_id = checks.header.subject_id
        answer = exchange_pb2.AccountCheckResultSet(check_set_id=set_id)
        for check in checks.checks:
            answer.results.add(
                check_id=check.check_id,
                status=exchange_pb2.ACCOUNT_CHECK_STATUS_CONFIRMED,
            )
        posted = call(
            running,
            bank,
            "BankService/PostAccountCheckResults",
            services_pb2.PostAccountCheckResultsRequest(
                result_set=sealed_now(bank, answer, f"{set_id}.answer")
            ),
        )
        assert posted.code is OK, posted.details
        answered.append(set_id)
    return answered


def open_other_county(running: Running) -> ClientCredentials:
    """County 500110's finance lets it pay CQ-NY-001 through CQRCB by gRPC;
    return that county's department."""
    chosen = call(
        running,
        running.client(Role.FINANCE, OTHER_COUNTY),
        "AdminService/SetAgentBank",
        services_pb2.SetAgentBankRequest(
            county=OTHER_COUNTY,
            policy_code=POLICY,
            bank_code=GRPC_BANK,
            connector="grpc-pull",
        ),
    )
    assert chosen.code is OK, chosen.details
    return running.client(Role.DEPARTMENT, OTHER_DEPARTMENT)


def personal_values(persons: list[Person]) -> list[str]:
    """Every personal value of these people, whole and in telling fragments."""
    values = []
    for person in persons:
        values += [person.name, person.id_number, person.account]
        values += [person.id_number[:14], person.account[-8:]]
    return values


def assert_no_personal_data(text: str, persons: list[Person]) -> None:
    leaked = [value for value in personal_values(persons) if value in text]
    assert not leaked, "the refusal carries personal data"


def changed_tables(
    before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]
) -> list[str]:
    return [
        name
        for name in before.keys() | after.keys()
        if before.get(name) != after.get(name)
    ]


# ==================================================================================
# The gRPC arena: registry, GetRecord, funds release, corrections, dry runs
# ==================================================================================


@dataclass
class Arena:
    running: Running
    clock: OffsetClock
    department: ClientCredentials
    other_department: ClientCredentials
    bank: ClientCredentials
    unit: ClientCredentials
    finance: ClientCredentials
    # Fictional people the registry did not hold before the arena declared
    # for them; index 3 and up are never declared.
    newcomers: list[Person]
    # Declaration ids by the state the arena left them in.
    declared: str
    reviewed: str
    confirmed: str
    # When batch "held" was stored, by the gateway's clock.
    held_submitted_at: dt.datetime

    @property
    def persons(self) -> list[Person]:
        return self.running.persons + self.newcomers

    def credentials(self, role: Role, org: str) -> ClientCredentials:
        return self.running.client(role, org)


def _declare(
    running: Running, unit: ClientCredentials, person: Person, **overrides: str
) -> Outcome:
    values = {
        "id_number": person.id_number,
        "name": person.name,
        "bank_code": GRPC_BANK,
        "account_number": person.account,
        "account_kind": "社保卡",
        "application_reference": "SQB-2026-0417",
    }
    values.update(overrides)
    return call(
        running,
        unit,
        "RegistryService/DeclareAccount",
        services_pb2.DeclareAccountRequest(
            declaration=registry_pb2.AccountDeclaration(**values)
        ),
    )


def _review(running: Running, unit: ClientCredentials, declaration_id: str) -> Outcome:
    return call(
        running,
        unit,
        "RegistryService/ReviewDeclaration",
        services_pb2.ReviewDeclarationRequest(
            declaration_id=declaration_id, approve=True
        ),
    )


def _confirm(
    running: Running,
    finance: ClientCredentials,
    declaration_id: str,
    approve: bool = True,
) -> Outcome:
    return call(
        running,
        finance,
        "RegistryService/ConfirmDeclaration",
        services_pb2.ConfirmDeclarationRequest(
            declaration_id=declaration_id, approve=approve
        ),
    )


def _declarations_in_each_state(
    running: Running,
    unit: ClientCredentials,
    finance: ClientCredentials,
    newcomers: list[Person],
) -> tuple[str, str, str]:
    ids = []
    for person in newcomers[:3]:
        declared = _declare(running, unit, person)
        assert declared.code is OK, declared.details
        ids.append(declared.response.declaration.declaration_id)
    assert _review(running, unit, ids[1]).code is OK
    assert _review(running, unit, ids[2]).code is OK
    assert _confirm(running, finance, ids[2]).code is OK
    return ids[0], ids[1], ids[2]


def build_arena(running: Running, clock: OffsetClock) -> Arena:
    core = running.gateway.core
    core.settings = dataclasses.replace(
        core.settings, unmask_orgs=frozenset({UNMASKER})
    )
    with core.engine.begin() as connection:
        connection.execute(
            insert(schema.banks).values(
                bank_code=ABC, bank_name="中国农业银行", card_prefix=ABC_PREFIX
            )
        )
    department = running.client(Role.DEPARTMENT, DEPARTMENT)
    bank = running.client(Role.BANK, GRPC_BANK)
    persons = running.persons

    # Batches "released" and "held": checks confirmed, funds for one only.
    with running.channel(department) as channel:
        submit(channel, requests_for(department, records_for(persons[0:4]), "released"))
        submit(channel, requests_for(department, records_for(persons[4:8]), "held"))
    assert sorted(confirm_every_check(running, bank)) == ["held.c0", "released.c0"]
    with running.channel(department) as channel:
        record_funds_release(channel, "released", "GK-released")

        # The department's own rejected record: a zero amount.
        submit(
            channel,
            requests_for(department, records_for(persons[8:9], "0.00"), "mine"),
        )

    # Another county's department, and its rejected record.
    other_department = open_other_county(running)
    with running.channel(other_department) as channel:
        submit(
            channel,
            requests_for(
                other_department,
                records_for(persons[9:10], "0.00"),
                "foreign",
                county=OTHER_COUNTY,
            ),
        )

    # The registry: one declaration in each state.
    unit = running.client(Role.UNIT, UNIT)
    finance = running.client(Role.FINANCE, FINANCE)
    newcomers = people(6, seed=20261203)
    declared, reviewed, confirmed = _declarations_in_each_state(
        running, unit, finance, newcomers
    )

    with core.engine.connect() as connection:
        held_submitted_at = connection.execute(
            select(schema.batches.c.submitted_at).where(
                schema.batches.c.batch_id == "held"
            )
        ).scalar_one()
    return Arena(
        running=running,
        clock=clock,
        department=department,
        other_department=other_department,
        bank=bank,
        unit=unit,
        finance=finance,
        newcomers=newcomers,
        declared=declared,
        reviewed=reviewed,
        confirmed=confirmed,
        held_submitted_at=held_submitted_at,
    )


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    clock = OffsetClock()
    running = start_gateway(tmp_path_factory.mktemp("surfaces"), clock)
    try:
        yield build_arena(running, clock)
    finally:
        running.gateway.stop(0)


# -- registry attacks ----------------------------------------------------------------


def card_of_another_banks_prefix(arena: Arena) -> Outcome:
    """CQRCB declared, but the card carries ABC's prefix."""
    person = arena.newcomers[3]
    card = make_card(random.Random(3), ABC_PREFIX)
    return _declare(arena.running, arena.unit, person, account_number=card)


def bank_declared_for_a_card_of_ours(arena: Arena) -> Outcome:
    """ABC declared, but the card carries CQRCB's prefix."""
    return _declare(arena.running, arena.unit, arena.newcomers[4], bank_code=ABC)


def review_of_another_units_declaration(arena: Arena) -> Outcome:
    other_unit = arena.credentials(Role.UNIT, OTHER_UNIT)
    return _review(arena.running, other_unit, arena.declared)


def confirmation_by_another_countys_finance(arena: Arena) -> Outcome:
    other_finance = arena.credentials(Role.FINANCE, OTHER_COUNTY)
    return _confirm(arena.running, other_finance, arena.reviewed)


def confirmation_of_a_confirmed_declaration(arena: Arena) -> Outcome:
    return _confirm(arena.running, arena.finance, arena.confirmed)


def refusal_of_a_confirmed_declaration(arena: Arena) -> Outcome:
    return _confirm(arena.running, arena.finance, arena.confirmed, approve=False)


def second_declaration_by_the_same_unit(arena: Arena) -> Outcome:
    """The loser of a race between two declarations for one person."""
    person = arena.newcomers[0]
    card = make_card(random.Random(5), OWN_PREFIX)
    return _declare(arena.running, arena.unit, person, account_number=card)


def second_declaration_by_another_unit(arena: Arena) -> Outcome:
    other_unit = arena.credentials(Role.UNIT, OTHER_UNIT)
    card = make_card(random.Random(6), OWN_PREFIX)
    return _declare(arena.running, other_unit, arena.newcomers[0], account_number=card)


# -- GetRecord attacks ---------------------------------------------------------------


def _get_record(
    arena: Arena, credentials: ClientCredentials, record_id: str, unmask: bool = False
) -> Outcome:
    return call(
        arena.running,
        credentials,
        "AdminService/GetRecord",
        services_pb2.GetRecordRequest(record_id=record_id, unmask=unmask),
    )


def record_guessed_by_another_countys_department(arena: Arena) -> Outcome:
    return _get_record(arena, arena.other_department, "released.r1")


def record_guessed_by_another_department_of_the_county(arena: Arena) -> Outcome:
    other = arena.credentials(Role.DEPARTMENT, SAME_COUNTY_DEPARTMENT)
    return _get_record(arena, other, "released.r1")


def unmask_by_finance_without_the_permission(arena: Arena) -> Outcome:
    return _get_record(arena, arena.finance, "released.r1", unmask=True)


def unmask_by_an_auditor(arena: Arena) -> Outcome:
    auditor = arena.credentials(Role.AUDITOR, AUDITOR)
    return _get_record(arena, auditor, "released.r1", unmask=True)


def _record_id_by_the_owner(record_id: str) -> Callable[[Arena], Outcome]:
    """The owning department asks for a crafted id: if the id reached SQL
    as code, or a wildcard matched, the owner would be answered a record."""

    def attack(arena: Arena) -> Outcome:
        return _get_record(arena, arena.department, record_id)

    return attack


# -- funds release attacks -----------------------------------------------------------


def _release(
    arena: Arena,
    credentials: ClientCredentials,
    batch_id: str,
    released_at: dt.datetime | None,
) -> Outcome:
    request = services_pb2.RecordFundsReleaseRequest(
        batch_id=batch_id, treasury_reference="GK-attack-1"
    )
    if released_at is not None:
        request.released_at.FromDatetime(released_at)
    return call(
        arena.running, credentials, "DepartmentService/RecordFundsRelease", request
    )


def release_in_the_future(arena: Arena) -> Outcome:
    """Ten minutes ahead of the gateway's (injected) clock."""
    return _release(
        arena, arena.department, "held", arena.clock() + dt.timedelta(minutes=10)
    )


def release_before_the_batch(arena: Arena) -> Outcome:
    return _release(
        arena,
        arena.department,
        "held",
        arena.held_submitted_at - dt.timedelta(seconds=1),
    )


def release_by_another_countys_finance(arena: Arena) -> Outcome:
    other_finance = arena.credentials(Role.FINANCE, OTHER_COUNTY)
    return _release(arena, other_finance, "held", None)


# -- dry-run attacks -----------------------------------------------------------------


def _dry_run(
    credentials: ClientCredentials, batch_id: str, persons: list[Person]
) -> list[services_pb2.SubmitBatchRequest]:
    return build_submission(
        credentials.signer(),
        batch_id=batch_id,
        county="500154",
        department="NYNC",
        policy_code=POLICY,
        period="2026",
        records=records_for(persons),
        dry_run=True,
    )


def _as_validate(
    requests: list[services_pb2.SubmitBatchRequest],
) -> list[services_pb2.ValidateBatchRequest]:
    """The same stream for ValidateBatch: the two messages share one layout."""
    return [
        services_pb2.ValidateBatchRequest.FromString(r.SerializeToString())
        for r in requests
    ]


def dry_run_manifest_replayed_to_submit(arena: Arena) -> Outcome:
    requests = _dry_run(arena.department, "dry-1", arena.running.persons[30:33])
    return call(
        arena.running, arena.department, "DepartmentService/SubmitBatch", requests
    )


def submission_manifest_sent_to_validate(arena: Arena) -> Outcome:
    requests = requests_for(
        arena.department, records_for(arena.running.persons[30:33]), "dry-2"
    )
    return call(
        arena.running,
        arena.department,
        "DepartmentService/ValidateBatch",
        _as_validate(requests),
    )


def dry_run_by_a_bank(arena: Arena) -> Outcome:
    """The bank signs the manifest itself, so only the role can stop it."""
    requests = _dry_run(arena.bank, "dry-3", arena.running.persons[30:33])
    return call(
        arena.running,
        arena.bank,
        "DepartmentService/ValidateBatch",
        _as_validate(requests),
    )


# -- the table of gRPC attacks -------------------------------------------------------

GRPC_ATTACKS = [
    pytest.param(
        card_of_another_banks_prefix,
        INVALID,
        "the card does not belong to the declared bank",
        id="registry-card-of-another-bank",
    ),
    pytest.param(
        bank_declared_for_a_card_of_ours,
        INVALID,
        "the card does not belong to the declared bank",
        id="registry-bank-without-its-card",
    ),
    pytest.param(
        review_of_another_units_declaration,
        NOT_FOUND,
        "no such declaration",
        id="registry-review-by-another-unit",
    ),
    pytest.param(
        confirmation_by_another_countys_finance,
        NOT_FOUND,
        "no such declaration",
        id="registry-confirm-by-another-county",
    ),
    pytest.param(
        confirmation_of_a_confirmed_declaration,
        PRECONDITION,
        "the declaration is not REVIEWED",
        id="registry-confirm-twice",
    ),
    pytest.param(
        refusal_of_a_confirmed_declaration,
        PRECONDITION,
        "the declaration is not REVIEWED",
        id="registry-refuse-after-confirm",
    ),
    pytest.param(
        second_declaration_by_the_same_unit,
        EXISTS,
        "the person already has an open declaration",
        id="registry-race-same-unit",
    ),
    pytest.param(
        second_declaration_by_another_unit,
        EXISTS,
        "the person already has an open declaration",
        id="registry-race-other-unit",
    ),
    pytest.param(
        record_guessed_by_another_countys_department,
        NOT_FOUND,
        "no such record",
        id="record-guessed-other-county",
    ),
    pytest.param(
        record_guessed_by_another_department_of_the_county,
        NOT_FOUND,
        "no such record",
        id="record-guessed-same-county",
    ),
    pytest.param(
        unmask_by_finance_without_the_permission,
        DENIED,
        "unmasking needs the unmask permission",
        id="record-unmask-finance",
    ),
    pytest.param(
        unmask_by_an_auditor,
        DENIED,
        "unmasking needs the unmask permission",
        id="record-unmask-auditor",
    ),
    *(
        pytest.param(
            _record_id_by_the_owner(record_id), NOT_FOUND, "no such record", id=name
        )
        for name, record_id in [
            ("record-id-quote-or", "released.r1' OR '1'='1"),
            ("record-id-comment", "released.r1'--"),
            ("record-id-union", "x' UNION SELECT record_id FROM records --"),
            ("record-id-drop", 'released.r1"; DROP TABLE records; --'),
            ("record-id-percent", "%"),
            ("record-id-like", "released.r_"),
            ("record-id-star", "*"),
            ("record-id-1mib", "released.r1" + "9" * (1024 * 1024)),
        ]
    ),
    pytest.param(
        release_in_the_future,
        INVALID,
        "a release cannot lie in the future",
        id="release-future",
    ),
    pytest.param(
        release_before_the_batch,
        INVALID,
        "a release cannot precede its batch",
        id="release-before-batch",
    ),
    pytest.param(
        release_by_another_countys_finance,
        NOT_FOUND,
        "no such batch",
        id="release-other-county-finance",
    ),
    pytest.param(
        dry_run_manifest_replayed_to_submit,
        INVALID,
        "a dry-run manifest goes to ValidateBatch",
        id="dry-run-replayed-to-submit",
    ),
    pytest.param(
        submission_manifest_sent_to_validate,
        INVALID,
        "a dry-run manifest goes to ValidateBatch",
        id="submission-sent-to-validate",
    ),
    pytest.param(
        dry_run_by_a_bank,
        DENIED,
        "this role may not call this method",
        id="dry-run-by-bank",
    ),
]


@pytest.mark.parametrize(("attack", "status", "message"), GRPC_ATTACKS)
def test_grpc_attack_is_refused_and_changes_nothing(
    arena: Arena,
    attack: Callable[[Arena], Outcome],
    status: grpc.StatusCode,
    message: str,
) -> None:
    before = dump(arena.running)

    outcome = attack(arena)

    after = dump(arena.running)
    assert outcome.code is status, f"got {outcome.code.name}: {outcome.details}"
    assert message in outcome.details
    assert_no_personal_data(outcome.details + repr(outcome.metadata), arena.persons)
    assert not changed_tables(before, after), "a refused call changed the store"


def test_a_guessed_record_reads_exactly_like_a_missing_one(arena: Arena) -> None:
    """No existence oracle: another department learns nothing from the answer."""
    other = arena.credentials(Role.DEPARTMENT, SAME_COUNTY_DEPARTMENT)

    existing = _get_record(arena, other, "released.r1")
    missing = _get_record(arena, other, "released.r999")

    assert (existing.code, existing.details) == (missing.code, missing.details)
    assert existing.code is NOT_FOUND


@pytest.mark.parametrize(
    "who",
    [pytest.param(DEPARTMENT, id="department"), pytest.param(FINANCE, id="finance")],
)
def test_a_second_release_with_another_time_does_not_move_the_clock(
    arena: Arena, who: str
) -> None:
    role = Role.DEPARTMENT if who == DEPARTMENT else Role.FINANCE
    releases, deadlines = schema.funds_releases, schema.deadlines
    with arena.running.gateway.core.engine.connect() as connection:
        first = connection.execute(
            select(releases.c.released_at).where(releases.c.batch_id == "released")
        ).scalar_one()
        clocks = connection.execute(select(deadlines)).all()
    # An hour on by the gateway's clock, the funds "arrive" again, later.
    arena.clock.offset = dt.timedelta(hours=1)
    later = arena.clock() - dt.timedelta(minutes=1)
    assert later > first
    before = dump(arena.running)

    try:
        outcome = _release(arena, arena.credentials(role, who), "released", later)
    finally:
        arena.clock.offset = dt.timedelta()

    after = dump(arena.running)
    assert outcome.code is OK, outcome.details
    assert outcome.response.already_recorded
    assert outcome.response.released_at.ToDatetime(tzinfo=dt.UTC) == first
    changed = changed_tables(before, after)
    assert not changed, f"a repeated release changed {changed}"
    assert clocks, "the first release started no clock to compare"


# -- corrections ---------------------------------------------------------------------

# The only tables a stored batch whose records are all rejected may add to.
BATCH_TABLES = {"batches", "batch_chunks", "records", "audit_log"}


def _correction(
    arena: Arena, batch_id: str, target: str
) -> list[services_pb2.SubmitBatchRequest]:
    """One record, clean in itself, that corrects ``target``."""
    person = arena.running.persons[30]
    record = batch_pb2.PaymentRecord(
        row=1,
        name=person.name,
        id_number=person.id_number,
        account_number=person.account,
        amount="88.00",
        bank_name="重庆农村商业银行",
        corrects_record_id=target,
    )
    return requests_for(arena.department, [record], batch_id)


def added_rows(
    before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]
) -> dict[str, list[tuple[Any, ...]]]:
    """Rows each table gained; fails if any row was changed or removed."""
    added = {}
    for name in before.keys() | after.keys():
        old = collections.Counter(before.get(name, []))
        new = collections.Counter(after.get(name, []))
        assert not old - new, f"rows of {name} changed or went"
        if new - old:
            added[name] = list((new - old).elements())
    return added


CORRECTION_TARGETS = [
    pytest.param("foreign.r1", id="another-departments-record"),
    pytest.param("mine.r01", id="leading-zero"),
    pytest.param("MINE.r1", id="upper-case"),
    pytest.param("mine.r1 ", id="trailing-space"),
    pytest.param(" mine.r1", id="leading-space"),
    pytest.param("mine.r1\u200b", id="zero-width-space"),
    pytest.param("mine\uff0er1", id="fullwidth-dot"),
    pytest.param("mine.r%", id="like-percent"),
    pytest.param("mine.r_", id="like-underscore"),
    pytest.param("mine.r1' OR '1'='1", id="sql-quote"),
    pytest.param("foreign.r1/../mine.r1", id="path-like"),
    pytest.param("mine", id="batch-id-alone"),
]


@pytest.mark.parametrize("target", CORRECTION_TARGETS)
def test_a_correction_of_what_it_may_not_correct_is_refused_for_that_record(
    arena: Arena, target: str, request: pytest.FixtureRequest
) -> None:
    batch_id = f"corr-{request.node.callspec.id}"
    before = dump(arena.running)

    outcome = call(
        arena.running,
        arena.department,
        "DepartmentService/SubmitBatch",
        _correction(arena, batch_id, target),
    )

    after = dump(arena.running)
    assert outcome.code is OK, outcome.details
    assert outcome.response.rejected_count == 1
    with arena.running.gateway.core.engine.connect() as connection:
        row = connection.execute(
            select(schema.records.c.state, schema.records.c.reasons).where(
                schema.records.c.batch_id == batch_id
            )
        ).one()
    assert (row.state, row.reasons) == (
        RecordState.REJECTED.value,
        "CORRECTION_INVALID",
    )
    added = added_rows(before, after)
    assert set(added) <= BATCH_TABLES, f"the refusal added to {set(added)}"
    strays = [r for rows in added.values() for r in rows if batch_id not in repr(r)]
    assert not strays, "rows were added that do not belong to the new batch"


# -- controls: the same surfaces accept what is legitimate ---------------------------


def test_the_arena_is_what_the_attacks_assume(arena: Arena) -> None:
    states = {
        **record_states(arena.running, "mine"),
        **record_states(arena.running, "foreign"),
    }
    sets = set_states(arena.running, SetKind.INSTRUCTION)
    summaries = [
        call(
            arena.running,
            arena.finance,
            "RegistryService/GetDeclaration",
            services_pb2.GetDeclarationRequest(declaration_id=d),
        )
        for d in (arena.declared, arena.reviewed, arena.confirmed)
    ]

    assert states == {"mine.r1": "REJECTED", "foreign.r1": "REJECTED"}
    assert sets == {"released.i0": SetState.READY.value, "held.i0": SetState.HELD.value}
    assert [s.response.declaration.state for s in summaries] == [
        registry_pb2.DECLARATION_STATE_DECLARED,
        registry_pb2.DECLARATION_STATE_REVIEWED,
        registry_pb2.DECLARATION_STATE_CONFIRMED,
    ]


def test_the_unmask_permission_reads_in_clear(arena: Arena) -> None:
    """Control for the unmask attacks: the permission exists and works."""
    unmasker = arena.credentials(Role.FINANCE, UNMASKER)

    outcome = _get_record(arena, unmasker, "released.r1", unmask=True)

    assert outcome.code is OK, outcome.details
    assert not outcome.response.masked
    assert outcome.response.id_number == arena.running.persons[0].id_number


def test_a_correction_of_its_own_rejected_record_is_accepted(arena: Arena) -> None:
    """Control for the crafted targets: the exact id is correctable."""
    outcome = call(
        arena.running,
        arena.department,
        "DepartmentService/SubmitBatch",
        _correction(arena, "corr-control", "mine.r1"),
    )

    assert outcome.code is OK, outcome.details
    assert outcome.response.rejected_count == 0
    assert record_states(arena.running, "corr-control") == {
        "corr-control.r1": RecordState.CHECKING.value
    }


# ==================================================================================
# The file world: a file-connected agent bank attacking through its folder
# ==================================================================================


@dataclass
class World:
    running: Running
    style: Style
    bank: Bank
    delivery: FileDelivery
    other_bank: ClientCredentials
    # The gateway's own signed check set, as it wrote it to to-bank.
    gateway_check_file: bytes
    # The result file PSBC's runner wrote for b-1, held back by the test.
    genuine_name: str
    genuine_data: bytes
    genuine_signature: bytes
    # A folder beside the exchange folders, for symlink targets.
    outside: Path

    @property
    def from_bank(self) -> Path:
        return self.bank.folders.from_bank

    @property
    def refused(self) -> Path:
        return self.bank.folders.refused

    def plant(
        self,
        name: str,
        data: bytes,
        payload_type: str,
        signer: ClientCredentials | None = None,
    ) -> str:
        """Write a complete, signed file into from-bank, as the bank would."""
        credentials = signer or self.bank.credentials
        exchange_files.write_signed(
            self.from_bank,
            name,
            data,
            signer=credentials.signer(),
            payload_type=payload_type,
        )
        return name

    def dead_letters(self) -> float:
        return dead_letters(self.running, "inbound-file")


def build_world(base: Path, style: Style) -> World:
    running = start_exchange_gateway(base, None, style.value)
    persons = running.persons
    with running.gateway.core.engine.begin() as connection:
        connection.execute(
            insert(schema.banks).values(
                bank_code=GRPC_BANK,
                bank_name="重庆农村商业银行",
                card_prefix=OWN_PREFIX,
            )
        )
    other_bank = running.client(Role.BANK, GRPC_BANK)

    # County 500110 pays through CQRCB by gRPC; CQRCB leases its instructions.
    other_department = open_other_county(running)
    with running.channel(other_department) as channel:
        submit(
            channel,
            requests_for(
                other_department,
                records_for(persons[20:23]),
                "other",
                county=OTHER_COUNTY,
            ),
        )
        record_funds_release(channel, "other", "GK-other")
    assert confirm_every_check(running, other_bank) == ["other.c0"]
    pulled = call(
        running,
        other_bank,
        "BankService/PullInstructions",
        services_pb2.PullInstructionsRequest(max_sets=50),
    )
    assert [s.set.payload != b"" for s in pulled.response.sets] == [True]

    # County 500154 pays through PSBC by files: "b-1" released, "held" not.
    submit_released(running, persons[:4], "b-1")
    department = running.client(Role.DEPARTMENT, DEPARTMENT)
    with running.channel(department) as channel:
        submit(channel, requests_for(department, records_for(persons[4:8]), "held"))

    bank = bank_for(running, base)
    delivery = delivery_for(running, base, style)
    runner = bank.file_runner(style)
    delivery.run_once()  # writes both check files
    gateway_check_file = (bank.folders.to_bank / "b-1.c0.checks").read_bytes()
    runner.run_once()  # answers and acknowledges them
    delivery.run_once()  # takes the answers in, writes b-1's instructions
    runner.run_once()  # pays, acknowledges, writes its result file

    # Hold the result file back; let the gateway take the acknowledgement.
    [genuine_name] = [
        n
        for n in exchange_files.list_complete(bank.folders.from_bank)
        if n.endswith(style.result_suffix)
    ]
    genuine_data = (bank.folders.from_bank / genuine_name).read_bytes()
    genuine_signature = (
        bank.folders.from_bank / exchange_files.signature_name(genuine_name)
    ).read_bytes()
    exchange_files.delete_acknowledged(bank.folders.from_bank, genuine_name)
    delivery.run_once()

    outside = base / "outside"
    outside.mkdir()
    return World(
        running=running,
        style=style,
        bank=bank,
        delivery=delivery,
        other_bank=other_bank,
        gateway_check_file=gateway_check_file,
        genuine_name=genuine_name,
        genuine_data=genuine_data,
        genuine_signature=genuine_signature,
        outside=outside,
    )


def _world(tmp_path_factory: pytest.TempPathFactory, style: Style) -> Iterator[World]:
    world = build_world(tmp_path_factory.mktemp(f"files-{style.value}"), style)
    try:
        yield world
    finally:
        world.running.gateway.stop(0)


@pytest.fixture(scope="module")
def fixed_width_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from _world(tmp_path_factory, Style.FIXED_WIDTH)


@pytest.fixture(scope="module")
def iso_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from _world(tmp_path_factory, Style.ISO20022)


@pytest.fixture(params=[Style.FIXED_WIDTH, Style.ISO20022], ids=lambda s: s.value)
def world(request: pytest.FixtureRequest) -> World:
    name = "fixed_width_world" if request.param is Style.FIXED_WIDTH else "iso_world"
    chosen: World = request.getfixturevalue(name)
    return chosen


# -- building files ------------------------------------------------------------------


def result_file(
    world: World, name: str, instruction_id: str, *, bank_code: str = FILE_BANK
) -> bytes:
    """A well-formed result file in the world's style: one PAID result."""
    now = dt.datetime.now(dt.UTC)
    out = io.BytesIO()
    if world.style is Style.FIXED_WIDTH:
        result = exchange_pb2.Result(
            instruction_id=instruction_id,
            status=exchange_pb2.RESULT_STATUS_PAID,
            bank_reference="BR-ATTACK-1",
        )
        result.completed_at.FromDatetime(now)
        fixed_width.write_result_file(
            out, fixed_width.ResultFileHeader(bank_code, name, now, 1), [result]
        )
    else:
        iso20022.write_pain002(
            out,
            [
                iso20022.TransactionStatus(
                    end_to_end_id=instruction_id,
                    status=exchange_pb2.RESULT_STATUS_PAID,
                    reason_code="",
                    bank_reference="BR-ATTACK-1",
                    completed_at=now,
                )
            ],
            message_id=name,
            created_at=now,
            original_message_id="b-1.i0.p0",
            original_payment_information_id="b-1.i0.p0",
        )
    return out.getvalue()


def raw_ack(target: str, data: bytes = b"") -> bytes:
    """An acknowledgement naming ``target`` as given, unchecked."""
    return f"{target}\n{hashlib.sha256(data).hexdigest()}\n".encode()


def check_answer(signer: ClientCredentials, check_set_id: str, check_id: str) -> bytes:
    """A signed AccountCheckResultSet confirming one check, as file bytes."""
    answer = exchange_pb2.AccountCheckResultSet(check_set_id=check_set_id)
    answer.results.add(
        check_id=check_id, status=exchange_pb2.ACCOUNT_CHECK_STATUS_CONFIRMED
    )
    envelope = sealed_now(signer, answer, f"{check_set_id}.answer.x")
    data: bytes = envelope.SerializeToString()
    return data


# -- file attacks: each plants files in from-bank and names the one to refuse -------


def results_for_another_banks_instruction(world: World) -> str:
    """Fixed width: a result for CQRCB's instruction. ISO 20022: a pain.002
    whose EndToEndId is CQRCB's instruction (short ids travel as themselves)."""
    name = f"forged-other{world.style.result_suffix}"
    data = result_file(world, "forged-other", "other.r1")
    return world.plant(name, data, world.style.result_type)


def results_for_an_instruction_never_delivered(world: World) -> str:
    """PSBC's own instruction, signed into the HELD set and never sent."""
    name = f"forged-held{world.style.result_suffix}"
    data = result_file(world, "forged-held", "held.r1")
    return world.plant(name, data, world.style.result_type)


def ack_climbing_out_of_the_folder(world: World) -> str:
    data = raw_ack(f"../to-bank/b-1.i0{world.style.instruction_suffix}")
    return world.plant("climb.ack", data, exchange_files.ACKNOWLEDGEMENT)


def ack_naming_an_absolute_path(world: World) -> str:
    target = world.bank.folders.to_bank / f"b-1.i0{world.style.instruction_suffix}"
    return world.plant(
        "absolute.ack", raw_ack(str(target)), exchange_files.ACKNOWLEDGEMENT
    )


def ack_of_a_set_never_delivered(world: World) -> str:
    data = raw_ack(f"held.i0{world.style.instruction_suffix}")
    return world.plant("held-i0.ack", data, exchange_files.ACKNOWLEDGEMENT)


def ack_of_another_banks_set(world: World) -> str:
    data = raw_ack(f"other.i0{world.style.instruction_suffix}")
    return world.plant("other-i0.ack", data, exchange_files.ACKNOWLEDGEMENT)


def answers_replaying_the_gateways_own_set(world: World) -> str:
    """The gateway's signed check set, signed again by the bank as its answer."""
    return world.plant(
        f"replayed{ANSWERS}",
        world.gateway_check_file,
        exchange_files.ACCOUNT_CHECK_ANSWERS,
    )


def answers_signed_by_another_bank(world: World) -> str:
    """CQRCB's detached signature on a file in PSBC's folder."""
    data = check_answer(world.bank.credentials, "b-1.c0", "b-1.r1")
    return world.plant(
        f"outer-other{ANSWERS}",
        data,
        exchange_files.ACCOUNT_CHECK_ANSWERS,
        signer=world.other_bank,
    )


def answers_whose_envelope_another_bank_signed(world: World) -> str:
    """PSBC relays an answer CQRCB signed for CQRCB's own check set."""
    data = check_answer(world.other_bank, "other.c0", "other.r1")
    return world.plant(
        f"inner-other{ANSWERS}", data, exchange_files.ACCOUNT_CHECK_ANSWERS
    )


def answers_for_another_banks_check_set(world: World) -> str:
    data = check_answer(world.bank.credentials, "other.c0", "other.r1")
    return world.plant(
        f"other-set{ANSWERS}", data, exchange_files.ACCOUNT_CHECK_ANSWERS
    )


def result_file_signed_as_an_acknowledgement(world: World) -> str:
    name = f"as-ack{world.style.result_suffix}"
    data = result_file(world, "as-ack", "b-1.r1")
    return world.plant(name, data, exchange_files.ACKNOWLEDGEMENT)


def file_over_the_size_bound(world: World) -> str:
    """A sparse file one byte over MAX_FILE_BYTES, with a valid signature
    file beside it (over other bytes: the size is checked first)."""
    name = f"huge{world.style.result_suffix}"
    with (world.from_bank / name).open("wb") as handle:
        handle.truncate(exchange_files.MAX_FILE_BYTES + 1)
    envelope = exchange_files.sign_file_bytes(
        world.bank.credentials.signer(), world.style.result_type, b"small"
    )
    signature = world.from_bank / exchange_files.signature_name(name)
    signature.write_bytes(envelope.SerializeToString())
    return name


FILE_ATTACKS = [
    pytest.param(
        results_for_another_banks_instruction,
        "NotFoundError",
        "a result names an instruction not delivered to this bank",
        id="result-for-other-banks-instruction",
    ),
    pytest.param(
        results_for_an_instruction_never_delivered,
        "NotFoundError",
        "a result names an instruction not delivered to this bank",
        id="result-for-undelivered-instruction",
    ),
    pytest.param(
        ack_climbing_out_of_the_folder,
        "ValueError",
        "the acknowledgement is malformed",
        id="ack-parent-path",
    ),
    pytest.param(
        ack_naming_an_absolute_path,
        "ValueError",
        "the acknowledgement is malformed",
        id="ack-absolute-path",
    ),
    pytest.param(
        ack_of_a_set_never_delivered,
        "PreconditionError",
        "the lease is not held",
        id="ack-never-delivered",
    ),
    pytest.param(
        ack_of_another_banks_set,
        "NotFoundError",
        "no such set for this bank",
        id="ack-other-banks-set",
    ),
    pytest.param(
        answers_replaying_the_gateways_own_set,
        "EnvelopeError",
        "payload type must be ykt.v1.AccountCheckResultSet",
        id="answers-gateways-own-set",
    ),
    pytest.param(
        answers_signed_by_another_bank,
        "UntrustedSignerError",
        "not signed by the expected party",
        id="answers-signed-by-other-bank",
    ),
    pytest.param(
        answers_whose_envelope_another_bank_signed,
        "PermissionDeniedError",
        "the answer is signed by another organisation",
        id="answers-inner-other-bank",
    ),
    pytest.param(
        answers_for_another_banks_check_set,
        "NotFoundError",
        "no such account-check set for this bank",
        id="answers-for-other-banks-set",
    ),
    pytest.param(
        result_file_signed_as_an_acknowledgement,
        "EnvelopeError",
        "payload type must be",
        id="result-signed-as-ack",
    ),
    pytest.param(
        file_over_the_size_bound,
        "FileTooLargeError",
        "over the size bound",
        id="huge-file",
    ),
]


def assert_refused_once(
    world: World,
    name: str,
    error: str,
    message: str,
    dead_before: float,
    before: dict[str, list[tuple[Any, ...]]],
) -> None:
    refused = entries(world.refused)
    assert name in refused
    assert exchange_files.signature_name(name) in refused
    why = (world.refused / f"{name}.why").read_text()
    assert why.startswith(f"{error}: "), why
    assert message in why
    assert_no_personal_data(why, world.running.persons)
    assert entries(world.from_bank) == []
    assert world.dead_letters() == dead_before + 1
    changed = changed_tables(before, dump(world.running))
    assert not changed, f"a refused file changed {changed}"


@pytest.mark.parametrize(("attack", "error", "message"), FILE_ATTACKS)
def test_file_attack_is_refused_once_and_changes_nothing(
    world: World, attack: Callable[[World], str], error: str, message: str
) -> None:
    before = dump(world.running)
    dead_before = world.dead_letters()
    name = attack(world)

    world.delivery.run_once()

    assert_refused_once(world, name, error, message, dead_before, before)


def test_a_result_file_whose_header_names_another_bank_is_refused(
    fixed_width_world: World,
) -> None:
    world = fixed_width_world
    before = dump(world.running)
    dead_before = world.dead_letters()
    name = world.plant(
        f"other-header{world.style.result_suffix}",
        result_file(world, "other-header", "b-1.r1", bank_code=GRPC_BANK),
        world.style.result_type,
    )

    world.delivery.run_once()

    assert_refused_once(
        world,
        name,
        "ValueError",
        "the result file names another bank",
        dead_before,
        before,
    )


# -- symlinks ------------------------------------------------------------------------


def plant_symlinks(world: World) -> tuple[str, Path, Path]:
    """A valid, signed result file outside the exchange folder, and symlinks
    to it and to its signature in from-bank under a complete-looking name."""
    target = world.outside / world.genuine_name
    target.write_bytes(world.genuine_data)
    target_signature = world.outside / exchange_files.signature_name(world.genuine_name)
    target_signature.write_bytes(world.genuine_signature)
    name = f"linked{world.style.result_suffix}"
    (world.from_bank / name).symlink_to(target)
    (world.from_bank / exchange_files.signature_name(name)).symlink_to(target_signature)
    return name, target, target_signature


def remove_symlinks(world: World, name: str) -> None:
    for part in (name, exchange_files.signature_name(name)):
        for folder in (world.from_bank, world.refused):
            if (folder / part).is_symlink():
                (folder / part).unlink()
    (world.refused / f"{name}.why").unlink(missing_ok=True)


def test_a_symlink_in_from_bank_is_neither_read_nor_followed(world: World) -> None:
    before = dump(world.running)
    name, target, target_signature = plant_symlinks(world)
    try:
        listed = exchange_files.list_complete(world.from_bank)
        with pytest.raises(EnvelopeError, match="not a regular file"):
            exchange_files.read_verified(
                world.from_bank,
                name,
                payload_type=world.style.result_type,
                trust=world.running.gateway.core.trust,
                expected_signer=world.bank.credentials.signer().identity,
            )

        world.delivery.run_once()

        assert name not in listed
        assert (world.refused / name).is_symlink()
        assert target.read_bytes() == world.genuine_data
        assert target_signature.read_bytes() == world.genuine_signature
        assert set(record_states(world.running, "b-1").values()) == {
            RecordState.INSTRUCTED.value
        }
        assert not changed_tables(before, dump(world.running))
    finally:
        remove_symlinks(world, name)


def test_a_symlink_in_from_bank_is_refused_not_skipped_silently(world: World) -> None:
    dead_before = world.dead_letters()
    name, _, _ = plant_symlinks(world)
    try:
        world.delivery.run_once()

        assert name in entries(world.refused)
        assert (world.refused / f"{name}.why").exists()
        assert world.dead_letters() == dead_before + 1
    finally:
        remove_symlinks(world, name)


def test_a_refusal_note_is_not_written_through_a_symlink(world: World) -> None:
    """The bank plants ``refused/<name>.why`` as a symlink, then sends a file
    the gateway must refuse under that name: the note must not land on the
    symlink's target (here a file of the test's; on a real host, any file
    the gateway may write: its database, its configuration)."""
    victim = world.outside / "victim"
    victim.write_text("precious\n")
    name = f"clobber{world.style.result_suffix}"
    note = world.refused / f"{name}.why"
    note.symlink_to(victim)
    try:
        world.plant(
            name,
            result_file(world, "clobber", "b-1.r1"),
            exchange_files.ACKNOWLEDGEMENT,
        )

        world.delivery.run_once()

        assert name in entries(world.refused)
        assert victim.read_text() == "precious\n"
    finally:
        note.unlink(missing_ok=True)


@pytest.fixture
def leased_checks(tmp_path: Path) -> Iterator[World]:
    """A fresh fixed-width world stopped early: PSBC's check file ``b-1.c0``
    is in to-bank, LEASED, and not yet acknowledged."""
    running = start_exchange_gateway(tmp_path, None, Style.FIXED_WIDTH.value)
    try:
        submit_released(running, running.persons[:4], "b-1")
        bank = bank_for(running, tmp_path)
        delivery = delivery_for(running, tmp_path, Style.FIXED_WIDTH)
        delivery.run_once()
        outside = tmp_path / "outside"
        outside.mkdir()
        # No second bank and no result file here: those fields stay empty.
        yield World(
            running=running,
            style=Style.FIXED_WIDTH,
            bank=bank,
            delivery=delivery,
            other_bank=bank.credentials,
            gateway_check_file=(bank.folders.to_bank / "b-1.c0.checks").read_bytes(),
            genuine_name="",
            genuine_data=b"",
            genuine_signature=b"",
            outside=outside,
        )
    finally:
        running.gateway.stop(0)


def check_set_state(world: World) -> str:
    return set_states(world.running, SetKind.ACCOUNT_CHECK)["b-1.c0"]


def test_an_ack_under_the_other_kinds_suffix_is_refused(leased_checks: World) -> None:
    world = leased_checks
    assert check_set_state(world) == SetState.LEASED.value
    target = f"b-1.c0{world.style.instruction_suffix}"
    world.plant(
        "wrong-kind.ack",
        raw_ack(target, b"bytes the gateway never wrote"),
        exchange_files.ACKNOWLEDGEMENT,
    )

    world.delivery.run_once()

    assert "wrong-kind.ack" in entries(world.refused)
    assert check_set_state(world) == SetState.LEASED.value


def test_an_ack_does_not_read_through_a_symlink_in_to_bank(
    leased_checks: World,
) -> None:
    world = leased_checks
    to_bank = world.bank.folders.to_bank
    secret = world.outside / "secret"
    secret.write_bytes(b"a file outside the exchange folder\n")
    (to_bank / "b-1.c0.checks").unlink()
    (to_bank / "b-1.c0.checks").symlink_to(secret)
    world.plant(
        "wrong-guess.ack",
        raw_ack("b-1.c0.checks", b"a wrong guess\n"),
        exchange_files.ACKNOWLEDGEMENT,
    )
    world.delivery.run_once()
    # The gateway refuses to read through the link at all.
    assert "wrong-guess.ack" in entries(world.refused)
    assert "not a regular file" in (world.refused / "wrong-guess.ack.why").read_text()
    world.plant(
        "right-guess.ack",
        raw_ack("b-1.c0.checks", secret.read_bytes()),
        exchange_files.ACKNOWLEDGEMENT,
    )

    world.delivery.run_once()

    # A right guess must not fare better than a wrong one.
    assert "right-guess.ack" in entries(world.refused)
    assert check_set_state(world) == SetState.LEASED.value


# -- controls ------------------------------------------------------------------------


def test_the_file_world_is_what_the_attacks_assume(world: World) -> None:
    instruction_sets = set_states(world.running, SetKind.INSTRUCTION)

    assert instruction_sets == {
        "b-1.i0": SetState.ACKED.value,
        "held.i0": SetState.HELD.value,
        "other.i0": SetState.LEASED.value,
    }
    assert set(record_states(world.running, "b-1").values()) == {
        RecordState.INSTRUCTED.value
    }
    assert result_count(world.running) == 0
    assert entries(world.bank.folders.to_bank) == []
    assert entries(world.from_bank) == []


def test_the_banks_genuine_result_file_is_accepted_after_every_attack(
    world: World,
) -> None:
    """Control: the refusals broke nothing; the held-back file still pays."""
    dead_before = world.dead_letters()
    # The bank's own bytes and signature, exactly as its runner wrote them:
    # the data first, so the file is complete only once both are there.
    (world.from_bank / world.genuine_name).write_bytes(world.genuine_data)
    signature = world.from_bank / exchange_files.signature_name(world.genuine_name)
    signature.write_bytes(world.genuine_signature)

    world.delivery.run_once()

    assert batch_state(world.running, "b-1") == "CLOSED"
    assert set(record_states(world.running, "b-1").values()) == {RecordState.PAID.value}
    assert entries(world.from_bank) == []
    assert world.dead_letters() == dead_before
    assert result_count(world.running) == 4
