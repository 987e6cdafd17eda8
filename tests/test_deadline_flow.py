"""Funds release and the agent bank's deadlines, on a gateway whose clock moves.

Instructions wait for the funds (Art. 19). Once released, the bank's pay-by
clock runs; moving the injected clock past it makes the deadline at risk,
then breached, and the breach shows in the API, the CLI and the metrics,
and stays recorded after the bank reports late.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import generate_latest
from sqlalchemy import Connection, func, select

from connectors import grpc_pull
from connectors.grpc_pull import GrpcPullRunner
from connectors.simulator import SimulatedBankCore, load_ledgers
from gateway import cli, deadline_store
from gateway.client import ClientCredentials, record_funds_release, submit
from gateway.core import GatewayCore
from gateway.deadlines import end_of_local_day, local_date
from gateway.states import RecordState
from gateway.store import schema
from gateway.workdays import WorkingCalendar
from keys.identity import Role
from keys.trust import TrustStore
from tests.conftest import MovableClock, Running, start_gateway
from tests.test_submission import records_for, requests_for
from ykt.v1 import batch_pb2, services_pb2, services_pb2_grpc


def _next_wednesday_morning() -> dt.datetime:
    """10:00 Beijing time on the first Wednesday at least a day from now.

    The certificates the test CA issues are valid from the real now, so the
    injected clock starts a little after it, not at a fixed date.
    """
    day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    while day.weekday() != 2:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(2, 0), dt.UTC)


START = _next_wednesday_morning()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def gateway(
    tmp_path: Path, database_url: str, clock: MovableClock
) -> Iterator[Running]:
    started = start_gateway(tmp_path, database_url, clock)
    # A CRL that stays fresh however far the test moves its clock.
    started.ca.write_crl(next_update=START + dt.timedelta(days=30))
    yield started
    started.gateway.stop(0)


def gateway_now(running: Running) -> dt.datetime:
    """The gateway's "now": what a department's manifest must be signed at."""
    return running.gateway.core.now()


def _pay_by(running: Running) -> dt.datetime:
    """The end of the first working day after START's local day."""
    answer = running.gateway.core.calendar.add_working_days(local_date(START), 1)
    return end_of_local_day(answer.value)


def _runner(
    running: Running, clock: MovableClock, tmp_path: Path
) -> tuple[GrpcPullRunner, grpc.Channel]:
    bank = running.client(Role.BANK, "CQRCB")
    core = SimulatedBankCore(
        "CQRCB", load_ledgers(running.reference / "banks"), tmp_path / "bank.db"
    )
    trust = TrustStore(running.ca.ca_path, [running.ca.crl_path], clock=clock)
    channel = running.channel(bank)
    return GrpcPullRunner(channel, core, bank.signer(), trust, clock=clock), channel


def _deadlines(
    running: Running, finance: ClientCredentials, **filters: object
) -> list[services_pb2.Deadline]:
    with running.channel(finance) as channel:
        stub = services_pb2_grpc.AdminServiceStub(channel)
        request = services_pb2.ListDeadlinesRequest(**filters)  # type: ignore[arg-type]
        return list(stub.ListDeadlines(request).deadlines)


def _submit_three_and_release(gateway: Running) -> None:
    """Batch b-1 of three records, submitted and its funds released."""
    department = gateway.client(Role.DEPARTMENT, "500154-NYNC")
    with gateway.channel(department) as channel:
        submit(
            channel,
            requests_for(
                department, records_for(gateway.persons[:3]), now=gateway_now(gateway)
            ),
        )
        record_funds_release(channel, "b-1", "GK-2026-0001")


def _pulled_instruction_sets(channel: grpc.Channel) -> int:
    stub = services_pb2_grpc.BankServiceStub(channel)
    response = stub.PullInstructions(services_pb2.PullInstructionsRequest(max_sets=5))
    return len(response.sets)


def test_instructions_wait_for_the_funds_release(
    gateway: Running, clock: MovableClock, tmp_path: Path
) -> None:
    department = gateway.client(Role.DEPARTMENT, "500154-NYNC")
    with gateway.channel(department) as channel:
        submit(
            channel,
            requests_for(
                department, records_for(gateway.persons[:4]), now=gateway_now(gateway)
            ),
        )
    runner, bank_channel = _runner(gateway, clock, tmp_path)

    # The bank answers the account checks, but gets no instruction yet.
    with bank_channel:
        runner.run_once()
        assert _pulled_instruction_sets(bank_channel) == 0

        with gateway.channel(department) as channel:
            release = record_funds_release(channel, "b-1", "GK-2026-0001")
            again = record_funds_release(channel, "b-1", "GK-2026-0001")
        assert release.pay_by.ToDatetime(tzinfo=dt.UTC) == _pay_by(gateway)
        assert release.pay_by.ToDatetime(tzinfo=dt.UTC) > START
        assert again.already_recorded
        assert again.released_at == release.released_at

        assert _pulled_instruction_sets(bank_channel) == 1


def test_only_the_owner_or_its_county_finance_records_a_release(
    gateway: Running,
) -> None:
    department = gateway.client(Role.DEPARTMENT, "500154-NYNC")
    with gateway.channel(department) as channel:
        submit(
            channel,
            requests_for(
                department, records_for(gateway.persons[:2]), now=gateway_now(gateway)
            ),
        )

    for role, org in (
        (Role.DEPARTMENT, "500110-NYNC"),
        (Role.FINANCE, "500110"),
    ):
        with (
            gateway.channel(gateway.client(role, org)) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            record_funds_release(channel, "b-1", "GK-1")
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    with (
        gateway.channel(gateway.client(Role.BANK, "CQRCB")) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        record_funds_release(channel, "b-1", "GK-1")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

    with gateway.channel(gateway.client(Role.FINANCE, "500154")) as channel:
        assert not record_funds_release(channel, "b-1", "GK-1").already_recorded


def test_a_missed_pay_by_is_at_risk_then_breached_and_stays_breached(
    gateway: Running,
    clock: MovableClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    department = gateway.client(Role.DEPARTMENT, "500154-NYNC")
    finance = gateway.client(Role.FINANCE, "500154")
    _submit_three_and_release(gateway)

    # 1. On time: the checks are answered; the instructions are out, unpaid.
    runner, bank_channel = _runner(gateway, clock, tmp_path)
    runner._answer_checks()
    pay_by = _pay_by(gateway)
    pay = [d for d in _deadlines(gateway, finance) if d.kind == "pay"]
    assert len(pay) == 1
    assert pay[0].status == "on_time"
    assert pay[0].due_at.ToDatetime(tzinfo=dt.UTC) == pay_by

    # 2. Inside the margin before pay-by: at risk.
    clock.now = pay_by - dt.timedelta(hours=2)
    at_risk = _deadlines(gateway, finance, at_risk_only=True)
    assert [(d.kind, d.status) for d in at_risk] == [("pay", "at_risk")]

    # 3. Past pay-by: breached, in the API, the CLI and the metrics.
    clock.now = pay_by + dt.timedelta(hours=1)
    breached = _deadlines(gateway, finance, breached_only=True)
    assert [(d.kind, d.status, d.breached) for d in breached] == [
        ("pay", "breached", True)
    ]
    status = cli.main(
        [
            "deadlines",
            "--gateway",
            gateway.target,
            "--credentials",
            str(finance.directory),
            "--breached",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert "breached" in printed
    assert "b-1.i0" in printed
    scraped = generate_latest(gateway.gateway.metrics.registry).decode()
    assert 'ykt_deadlines{bank="CQRCB",kind="pay",status="breached"} 1.0' in scraped

    # 4. The bank pays and reports late: the breach stays recorded.
    runner.run_once()
    bank_channel.close()
    pay = [d for d in _deadlines(gateway, finance) if d.kind == "pay"]
    assert pay[0].breached
    assert pay[0].status == "breached"
    assert pay[0].HasField("met_at")
    with gateway.channel(department) as channel:
        batch = services_pb2_grpc.DepartmentServiceStub(channel).GetBatch(
            services_pb2.GetBatchRequest(batch_id="b-1")
        )
    assert batch.state == batch_pb2.BATCH_STATE_CLOSED


def test_a_deadline_the_calendar_can_only_guess_is_provisional(
    gateway: Running, clock: MovableClock, tmp_path: Path
) -> None:
    # A calendar with no schedule for any year: every answer is a guess, as
    # for a year the State Council has not published yet.
    gateway.gateway.core.calendar = WorkingCalendar({})
    department = gateway.client(Role.DEPARTMENT, "500154-NYNC")
    with gateway.channel(department) as channel:
        submit(
            channel,
            requests_for(
                department, records_for(gateway.persons[:2]), now=gateway_now(gateway)
            ),
        )
        release = record_funds_release(channel, "b-1", "GK-2026-0002")
    assert release.provisional

    runner, bank_channel = _runner(gateway, clock, tmp_path)
    with bank_channel:
        runner._answer_checks()
    finance = gateway.client(Role.FINANCE, "500154")
    listed = _deadlines(gateway, finance)
    assert {d.kind for d in listed} == {"pay", "report"}
    assert all(d.provisional for d in listed)
    scraped = generate_latest(gateway.gateway.metrics.registry).decode()
    assert "ykt_calendar_provisional_answers_total 1.0" in scraped
    assert f'ykt_calendar_year_covered{{year="{START.year}"}} 0.0' in scraped


def test_a_set_paid_over_several_posts_is_settled_once_when_its_last_result_arrives(
    gateway: Running,
    clock: MovableClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The pay duty is met only when no instruction of the set is open; the
    # count that decides it is made once per post, by the caller.
    finance = gateway.client(Role.FINANCE, "500154")
    _submit_three_and_release(gateway)
    settled: list[tuple[str, int]] = []
    settle = deadline_store._settle_set

    def spy(
        core: GatewayCore, connection: Connection, set_id: str, now: dt.datetime
    ) -> None:
        records = schema.records
        still_open = connection.execute(
            select(func.count()).where(
                records.c.instruction_set_id == set_id,
                records.c.state == RecordState.INSTRUCTED.value,
            )
        ).scalar_one()
        settled.append((set_id, still_open))
        settle(core, connection, set_id, now)

    monkeypatch.setattr(deadline_store, "_settle_set", spy)
    monkeypatch.setattr(grpc_pull, "REPORT_BATCH", 1)

    runner, bank_channel = _runner(gateway, clock, tmp_path)
    runner._answer_checks()
    runner.run_once()
    bank_channel.close()

    pay = [d for d in _deadlines(gateway, finance) if d.kind == "pay"]
    assert settled == [("b-1.i0", 0)]
    assert len(pay) == 1
    assert pay[0].HasField("met_at")
    assert not pay[0].breached
