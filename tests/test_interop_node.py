"""A bank written in Node.js against a real gateway, and the golden vectors in Node.

What this proves: the contract in proto/ and the envelope rules are enough
for another language to be an agent bank. The Node client (interop/node)
verifies the gateway's signed sets with Node's own crypto, answers them, and
signs its results with its own code; the gateway accepts those results, the
records reach PAID, and the signed result sets are kept as evidence. Node
also agrees with every golden envelope vector, and refuses a tampered set.

Skipped, with the reason, where node or npm is not installed. On first use
it runs ``npm ci`` in interop/node, which needs the npm registry.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from gateway.client import (
    ClientCredentials,
    build_submission,
    record_funds_release,
    submit,
)
from gateway.envelope import open_envelope, seal
from gateway.store import schema
from keys.ca import fingerprint
from keys.identity import Role
from keys.signing import Signer
from keys.trust import TrustStore
from tests.conftest import Running
from tests.fakes import Person
from ykt.v1 import (
    batch_pb2,
    envelope_pb2,
    exchange_pb2,
    services_pb2,
    services_pb2_grpc,
)

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "interop" / "node"
NODE_BIN = NODE_DIR / "bin" / "ykt-node-bank.js"
VECTORS = ROOT / "tests" / "vectors" / "envelopes"
DEPARTMENT = "500154-NYNC"
BANK = "CQRCB"
AMOUNT = "120.50"
AMOUNT_FEN = 12050

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node and npm are needed to run the Node.js bank client",
)


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with interop/node's pinned packages installed."""
    if not (NODE_DIR / "node_modules").exists():
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert installed.returncode == 0, installed.stderr[-2000:]
    executable = shutil.which("node")
    assert executable is not None
    return executable


@dataclass(frozen=True)
class NodeRun:
    returncode: int
    summary: dict[str, Any]
    stderr: str


def run_node(node: str, *args: str) -> NodeRun:
    completed = subprocess.run(
        [node, str(NODE_BIN), *args],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 1, (completed.stdout, completed.stderr[-2000:])
    return NodeRun(completed.returncode, json.loads(lines[0]), completed.stderr)


def run_bank(
    node: str, target: str, bank: ClientCredentials, crl: Path, *extra: str
) -> NodeRun:
    return run_node(
        node,
        "bank",
        "--gateway",
        target,
        "--credentials",
        str(bank.directory),
        "--crl",
        str(crl),
        *extra,
    )


def submit_batch(running: Running, persons: list[Person], batch_id: str) -> None:
    department = running.client(Role.DEPARTMENT, DEPARTMENT)
    records = [
        batch_pb2.PaymentRecord(
            row=i + 1,
            name=p.name,
            id_number=p.id_number,
            account_number=p.account,
            amount=AMOUNT,
            bank_name="重庆农村商业银行",
        )
        for i, p in enumerate(persons)
    ]
    requests = build_submission(
        department.signer(),
        batch_id=batch_id,
        county="500154",
        department="NYNC",
        policy_code="CQ-NY-001",
        period="2026",
        records=records,
    )
    with running.channel(department) as channel:
        response = submit(channel, requests)
        # Art. 19: instructions reach the bank only once the funds have.
        record_funds_release(channel, batch_id, "GK-2026-0001")
    assert response.rejected_count == 0


def outcomes(running: Running, batch_id: str) -> dict[int, tuple[int, list[str]]]:
    department = running.client(Role.DEPARTMENT, DEPARTMENT)
    with running.channel(department) as channel:
        stub = services_pb2_grpc.DepartmentServiceStub(channel)
        listed = stub.ListRecords(services_pb2.ListRecordsRequest(batch_id=batch_id))
        return {r.row: (r.outcome, [x.code for x in r.reasons]) for r in listed}


def batch_state(running: Running, batch_id: str) -> int:
    department = running.client(Role.DEPARTMENT, DEPARTMENT)
    with running.channel(department) as channel:
        stub = services_pb2_grpc.DepartmentServiceStub(channel)
        batch = stub.GetBatch(services_pb2.GetBatchRequest(batch_id=batch_id))
    state: int = batch.state
    return state


def trust_now(running: Running) -> TrustStore:
    return TrustStore(
        running.ca.ca_path, [running.ca.crl_path], clock=lambda: dt.datetime.now(dt.UTC)
    )


# -- against the real gateway --------------------------------------------------


def test_node_bank_pays_a_batch_and_the_gateway_keeps_its_signed_results(
    node: str, running: Running
) -> None:
    persons = running.persons[:6]
    submit_batch(running, persons, "b-node-1")
    bank = running.client(Role.BANK, BANK)

    run = run_bank(node, running.target, bank, running.ca.crl_path)

    assert run.returncode == 0, (run.summary, run.stderr[-2000:])
    summary = run.summary
    assert summary["ok"] is True
    assert summary["bank"] == BANK
    assert summary["signing_suite"] == "ecdsa-p256-sha256"
    assert summary["checks"] == {"ACCOUNT_CHECK_STATUS_CONFIRMED": 6}
    assert summary["paid"] == 6
    assert int(summary["paid_fen"]) == 6 * AMOUNT_FEN
    assert {r["accepted"] for r in summary["receipts"]} == {6}

    assert batch_state(running, "b-node-1") == batch_pb2.BATCH_STATE_CLOSED
    assert {o for o, _ in outcomes(running, "b-node-1").values()} == {
        batch_pb2.OUTCOME_PAID
    }

    with running.gateway.core.engine.connect() as connection:
        evidence = connection.execute(
            select(schema.evidence).where(schema.evidence.c.bank_code == BANK)
        ).all()
        results = connection.execute(select(schema.results)).all()
    result_evidence = [
        row for row in evidence if row.set_id == results[0].result_set_id
    ]
    assert len(result_evidence) == 1
    assert {r.result_set_id for r in results} == {result_evidence[0].set_id}
    assert {r.status for r in results} == {"PAID"}
    assert len(results) == 6

    stored = result_evidence[0]
    reopened = open_envelope(
        envelope_pb2.SignedEnvelope(
            payload_type="ykt.v1.ResultSet",
            payload=stored.payload,
            signature=stored.signature,
            signer_certificate=stored.signer_certificate,
        ),
        exchange_pb2.ResultSet,
        trust=trust_now(running),
        audience="gateway",
        now=dt.datetime.now(dt.UTC),
    )
    assert stored.signer_certificate == bank.signer().cert_der
    assert reopened.key_id == fingerprint(bank.signer().cert)
    assert reopened.message.header.sender == BANK
    assert reopened.message.header.subject_id.endswith(".results")
    assert len(reopened.message.results) == 6


def test_node_bank_answers_from_its_ledger(
    node: str, running: Running, tmp_path: Path
) -> None:
    persons = running.persons[:4]
    submit_batch(running, persons, "b-node-2")
    ledger = tmp_path / "ledger.json"
    ledger.write_text(
        json.dumps(
            {
                "accounts": {
                    persons[0].account: {"status": "NORMAL"},
                    persons[1].account: {"status": "FROZEN"},
                    persons[2].account: {
                        "status": "NORMAL",
                        "status_at_payment": "CLOSED",
                    },
                    persons[3].account: {
                        "status": "NORMAL",
                        "holder_id_number": persons[0].id_number,
                    },
                }
            }
        ),
        encoding="utf-8",
    )
    bank = running.client(Role.BANK, BANK)

    run = run_bank(
        node, running.target, bank, running.ca.crl_path, "--ledger", str(ledger)
    )

    assert run.returncode == 0, (run.summary, run.stderr[-2000:])
    assert run.summary["paid"] == 1
    assert run.summary["failed"] == 1
    assert int(run.summary["paid_fen"]) == AMOUNT_FEN
    assert outcomes(running, "b-node-2") == {
        1: (batch_pb2.OUTCOME_PAID, []),
        2: (batch_pb2.OUTCOME_REJECTED, ["ACCOUNT_FROZEN"]),
        3: (batch_pb2.OUTCOME_FAILED, ["ACCOUNT_CLOSED"]),
        4: (batch_pb2.OUTCOME_REJECTED, ["ACCOUNT_HOLDER_MISMATCH"]),
    }
    printed = json.dumps(run.summary, ensure_ascii=False) + run.stderr
    for person in persons:
        assert person.account not in printed
        assert person.id_number not in printed
        assert person.name not in printed


# -- a fake gateway that serves one account-check set ---------------------------


@dataclass
class FakeGateway(services_pb2_grpc.BankServiceServicer):
    """Serves one signed AccountCheckSet and records what the bank sends back."""

    check_set: envelope_pb2.SignedEnvelope
    answers: list[envelope_pb2.SignedEnvelope] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)

    def PullAccountChecks(self, request: Any, context: Any) -> Any:  # noqa: N802
        served = exchange_pb2.LeasedSet(set=self.check_set, lease_id="lease-1")
        served.lease_expires_at.FromDatetime(
            dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
        )
        sets = [] if self.acknowledged else [served]
        return services_pb2.PullAccountChecksResponse(sets=sets)

    def PostAccountCheckResults(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.answers.append(request.result_set)
        receipt = exchange_pb2.Receipt(set_id="b-fake.c0.answer", accepted=1)
        return services_pb2.PostAccountCheckResultsResponse(receipt=receipt)

    def PullInstructions(self, request: Any, context: Any) -> Any:  # noqa: N802
        return services_pb2.PullInstructionsResponse()

    def Acknowledge(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.acknowledged.append(request.set_id)
        return services_pb2.AcknowledgeResponse()


@contextmanager
def serving(running: Running, servicer: FakeGateway) -> Iterator[str]:
    """Serve ``servicer`` on port 0 with the gateway's real TLS certificate."""
    config = running.config
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    services_pb2_grpc.add_BankServiceServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials(
        [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
        root_certificates=config.ca_bundle.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield f"localhost:{port}"
    finally:
        server.stop(0)


def gateway_check_set(running: Running) -> envelope_pb2.SignedEnvelope:
    """An AccountCheckSet signed with the gateway's real signing key."""
    person = running.persons[0]
    check_set = exchange_pb2.AccountCheckSet(bank_code=BANK)
    check_set.checks.add(
        check_id="rec-1",
        holder_name=person.name,
        holder_id_number=person.id_number,
        account_number=person.account,
    )
    signer = Signer.load(running.config.signing_cert, running.config.signing_key)
    return seal(
        signer,
        check_set,
        audience=BANK,
        subject_id="b-fake.c0",
        now=dt.datetime.now(dt.UTC),
    )


def test_node_bank_answers_an_intact_set_with_an_answer_python_verifies(
    node: str, running: Running
) -> None:
    fake = FakeGateway(gateway_check_set(running))
    bank = running.client(Role.BANK, BANK)

    with serving(running, fake) as target:
        run = run_bank(node, target, bank, running.ca.crl_path)

    assert run.returncode == 0, (run.summary, run.stderr[-2000:])
    assert fake.acknowledged == ["b-fake.c0"]
    [answer] = fake.answers
    opened = open_envelope(
        answer,
        exchange_pb2.AccountCheckResultSet,
        trust=trust_now(running),
        audience="gateway",
        now=dt.datetime.now(dt.UTC),
    )
    assert opened.message.check_set_id == "b-fake.c0"
    assert opened.message.header.subject_id == "b-fake.c0.answer"
    assert [(r.check_id, r.status) for r in opened.message.results] == [
        ("rec-1", exchange_pb2.ACCOUNT_CHECK_STATUS_CONFIRMED)
    ]


def test_node_bank_refuses_a_tampered_set_and_answers_nothing(
    node: str, running: Running
) -> None:
    envelope = gateway_check_set(running)
    check_set = exchange_pb2.AccountCheckSet.FromString(envelope.payload)
    check_set.checks[0].account_number = running.persons[1].account
    envelope.payload = check_set.SerializeToString(deterministic=True)
    fake = FakeGateway(envelope)
    bank = running.client(Role.BANK, BANK)

    with serving(running, fake) as target:
        run = run_bank(node, target, bank, running.ca.crl_path)

    assert run.returncode == 2
    assert run.summary["ok"] is False
    assert run.summary["error"] == "verification"
    assert run.summary["reason"] == "signature"
    assert fake.answers == []
    assert fake.acknowledged == []


# -- the golden vectors ---------------------------------------------------------


def expected_verdicts(directory: Path) -> dict[str, tuple[str, str | None]]:
    verdicts = {}
    for path in directory.glob("*.json"):
        vector = json.loads(path.read_text(encoding="utf-8"))
        expected = vector["expected"]
        verdicts[vector["name"]] = (expected["verdict"], expected["reason"])
    return verdicts


def test_node_agrees_with_every_golden_vector(node: str) -> None:
    run = run_node(node, "verify-vectors", "--dir", str(VECTORS))

    assert run.returncode == 0, run.summary
    assert run.summary["ok"] is True
    assert run.summary["disagreed"] == []
    node_verdicts = {
        r["name"]: (r["verdict"], r["reason"]) for r in run.summary["results"]
    }
    assert node_verdicts == expected_verdicts(VECTORS)
    assert len(node_verdicts) >= 12


def test_node_reports_a_vector_it_disagrees_with(node: str, tmp_path: Path) -> None:
    copy = tmp_path / "vectors"
    shutil.copytree(VECTORS, copy)
    path = copy / "invalid-tampered-payload.json"
    vector = json.loads(path.read_text(encoding="utf-8"))
    vector["expected"].update(verdict="valid", reason=None)
    path.write_text(json.dumps(vector), encoding="utf-8")

    run = run_node(node, "verify-vectors", "--dir", str(copy))

    assert run.returncode == 2
    assert run.summary["ok"] is False
    assert [d["name"] for d in run.summary["disagreed"]] == ["invalid-tampered-payload"]
