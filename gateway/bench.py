"""``ykt bench``: a batch of N records through the real path, against its ceiling.

The path, with each part a separate process as in production:

  department file (CSV, written by ``samplegen.write_bench_set``)
    -> parse      read the file, build records, spool signed-for chunks
    -> submit     sign the manifest, stream over mTLS; the gateway verifies,
                  validates, encrypts and stores, and routes to account checks
    -> verify     funds released at once; the bank (``ykt bank simulate``,
                  grpc-pull) answers every check; the gateway turns
                  confirmations into instruction sets
    -> deliver    the bank pulls every instruction set, pays and
                  acknowledges it, while later checks are still answered
    -> report     the bank posts every result; every record is final

Verify and deliver overlap, as they do in production, and are both timed
from the end of the submission. End to end is "file to acknowledged
instructions" by the wall clock: the start of parse to the end of deliver.

The ceiling is measured in the same run, on the same data, with no gateway
logic around the building blocks: CSV reading, protobuf parsing, HMAC of
ID and account numbers, AES-GCM of the chunk bytes, one SQLite transaction
of inserts, and a bare gRPC stream of the chunks over mutual TLS. Their
per-record costs add up to the ceiling; each stage is compared with the
blocks it is made of.

This is a benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import resource
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import create_engine, func, select

from connectors.simulator import LedgerBook
from gateway.client import (
    ClientCredentials,
    SpooledBatch,
    open_channel,
    record_funds_release,
    spooled_submission,
)
from gateway.demo import wait_for_port, ykt_command
from gateway.files import read_department_file
from gateway.samplegen import write_bench_set
from gateway.states import RecordState, SetKind, SetState
from gateway.store import schema
from gateway.validate import iter_records
from keys.ca import DevelopmentCA, write_credentials
from keys.identity import Identity, Role
from ykt.v1 import batch_pb2, services_pb2_grpc

BATCH_ID = "bench-1"
POLL_SECONDS = 0.2
# Runner processes of the bank, sharing its core as a bank's pullers do: some
# answer or pay while others wait on the gateway. On 2 cores at 200,000
# records, four kept the gateway busiest: two left it waiting between calls
# (verify and deliver 57 s against 43 s), eight made it spend more on
# contention than they gained (53 s).
PULLERS = 4


@dataclass
class Stage:
    name: str
    seconds: float
    records: int
    ceiling: float | None = None  # records/s of the blocks the stage is made of

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else float("inf")


@dataclass
class Report:
    records: int
    stages: list[Stage] = field(default_factory=list)
    blocks: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    # Processor time each process used from its start to the end of report.
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    # File to acknowledged instructions, by the wall clock.
    end_to_end_seconds: float = 0.0

    def ceiling(self, *names: str) -> float:
        """Records/s of doing every named block once per record, in turn."""
        return 1.0 / sum(1.0 / self.blocks[name] for name in names)


MARKER = ".ykt-bench"


def _fresh(out: Path) -> None:
    """Empty the work folder, but only one that a benchmark made."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise SystemExit(f"{out} is not a benchmark folder; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by ykt bench; emptied by the next run\n")


def run_bench(records: int, out: Path, pullers: int = PULLERS) -> int:
    _fresh(out)
    data, state = out / "data", out / "state"
    report = Report(records)

    # 0. Set-up, not measured: data, keys, reference data, the processes.
    print(f"generating {records} records ...", flush=True)
    _in_child(write_bench_set, data, records)
    _ykt("admin", "import", "--state", str(state), "--reference", str(data))
    ca = DevelopmentCA.open_or_create(state / "pki")
    clients = out / "clients"
    for role, org in ((Role.DEPARTMENT, "500154-NYNC"), (Role.BANK, "CQRCB")):
        directory = clients / f"{role.value}-{org}"
        if not (directory / "cert.pem").exists():
            write_credentials(
                ca.dev_generate_credentials(Identity(role, org)), ca.cert, directory
            )
    department = ClientCredentials(clients / "department-500154-NYNC")
    # The bank's pullers share one ledger file; built here, it is current
    # when they open it and its building is not timed.
    _in_child(_open_ledger_book, data / "banks", out / "bank" / "ledgers.db")
    gateway, port = _start_gateway(state, out / "gateway.log")
    target = f"127.0.0.1:{port}"
    banks = [
        _start_bank(target, data, clients / "bank-CQRCB", ca, out, puller)
        for puller in range(pullers)
    ]
    engine = create_engine(f"sqlite:///{state / 'gateway.db'}")
    try:
        # 1. Parse.
        began = started = time.perf_counter()
        source = read_department_file(data / "batches" / "bench.csv")
        spool = SpooledBatch(iter_records(source.iter_rows()), directory=out)
        report.stages.append(Stage("parse", time.perf_counter() - started, records))
        report.peak_rss_mib["client"] = _own_peak_rss()

        # 2. Submit.
        started = time.perf_counter()
        with open_channel(target, department, timeout=3600) as channel:
            stub = services_pb2_grpc.DepartmentServiceStub(channel)
            response = stub.SubmitBatch(
                spooled_submission(
                    department.signer(),
                    spool,
                    batch_id=BATCH_ID,
                    county="500154",
                    department="NYNC",
                    policy_code="CQ-NY-001",
                    period="2026",
                    source_file="bench.csv",
                ),
                timeout=3600,
            )
            report.stages.append(
                Stage("submit", time.perf_counter() - started, records)
            )
            if response.rejected_count:
                print(f"note: {response.rejected_count} records were refused")

            # 3. The treasury releases the funds as soon as the batch is
            #    accepted, as it may (Art. 19): account checks (verify) and
            #    payments of the confirmed records (deliver) then overlap, and
            #    both are timed from the end of the submission.
            submitted = time.perf_counter()
            record_funds_release(channel, BATCH_ID, "GK-BENCH-1")
            _wait(lambda: _count_in(engine, RecordState.CHECKING) == 0)
            report.stages.append(
                Stage("verify", time.perf_counter() - submitted, records)
            )

            # 4. Every instruction set delivered and acknowledged.
            _wait(lambda: _unacknowledged_instruction_sets(engine) == 0)
            report.stages.append(
                Stage("deliver", time.perf_counter() - submitted, records)
            )
            report.end_to_end_seconds = time.perf_counter() - began

        # 5. Results reported.
        started = time.perf_counter()
        _wait(lambda: _count_in(engine, RecordState.INSTRUCTED) == 0)
        report.stages.append(Stage("report", time.perf_counter() - started, records))
        paid = _count_in(engine, RecordState.PAID)
        report.peak_rss_mib["gateway"] = _peak_rss_of(gateway.pid)
        report.cpu_seconds["gateway"] = _cpu_seconds_of(gateway.pid)
        for puller, bank in enumerate(banks):
            report.peak_rss_mib[f"bank puller {puller}"] = _peak_rss_of(bank.pid)
            report.cpu_seconds[f"bank puller {puller}"] = _cpu_seconds_of(bank.pid)
    finally:
        engine.dispose()
        for process in (*banks, gateway):
            process.terminate()
            process.wait(timeout=30)

    # 6. The ceiling, on the same data.
    _measure_blocks(
        report, data / "batches" / "bench.csv", spool, department, state / "gateway"
    )
    spool.close()
    _print(report)
    if paid != records:
        print(f"NOT ALL PAID: {paid} of {records}; the figures above are void")
        return 1
    return 0


# -- the processes ---------------------------------------------------------------


def _ykt(*args: str) -> None:
    subprocess.run(ykt_command(*args), check=True)


def _in_child(function: Callable[..., Any], *args: Any) -> None:
    """Run set-up work in a child, so its memory is not the benchmark's."""
    with futures.ProcessPoolExecutor(max_workers=1) as pool:
        pool.submit(function, *args).result()


def _start_gateway(state: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    ready = state / "bench.port"
    ready.unlink(missing_ok=True)
    process = subprocess.Popen(
        ykt_command(
            "serve",
            "--dev",
            "--state",
            str(state),
            "--listen",
            "127.0.0.1:0",
            "--ready-file",
            str(ready),
        ),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    return process, wait_for_port(ready, process, log)


def _open_ledger_book(directory: Path, database: Path) -> None:
    LedgerBook.open(directory, database).close()


def _start_bank(
    target: str,
    data: Path,
    credentials: Path,
    ca: DevelopmentCA,
    out: Path,
    puller: int,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ykt_command(
            "bank",
            "simulate",
            "--bank",
            "CQRCB",
            "--gateway",
            target,
            "--ledgers",
            str(data / "banks"),
            "--credentials",
            str(credentials),
            "--crl",
            str(ca.crl_path),
            "--state",
            str(out / "bank"),
            "--ledger-book",
            str(out / "bank" / "ledgers.db"),
        ),
        stdout=(out / f"bank-{puller}.log").open("ab"),
        stderr=subprocess.STDOUT,
    )


def _wait(done: Callable[[], bool], bound: float = 3600) -> None:
    deadline = time.monotonic() + bound
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark's batch did not move on in time")
        time.sleep(POLL_SECONDS)


def _count_in(engine: Any, state: RecordState) -> int:
    with engine.connect() as connection:
        count: int = connection.execute(
            select(func.count()).where(
                schema.records.c.batch_id == BATCH_ID,
                schema.records.c.state == state.value,
            )
        ).scalar_one()
    return count


def _unacknowledged_instruction_sets(engine: Any) -> int:
    sets = schema.exchange_sets
    with engine.connect() as connection:
        count: int = connection.execute(
            select(func.count()).where(
                sets.c.kind == SetKind.INSTRUCTION.value,
                sets.c.state.in_(
                    [SetState.HELD.value, SetState.READY.value, SetState.LEASED.value]
                ),
            )
        ).scalar_one()
    return count


def _own_peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_of(pid: int) -> float:
    """VmHWM, the process's peak resident set, in MiB (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _cpu_seconds_of(pid: int) -> float:
    """User and system time of a running process, in seconds (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # utime and stime, the 14th and 15th fields of stat(5), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the ceiling -----------------------------------------------------------------


def _measure_blocks(
    report: Report,
    path: Path,
    spool: SpooledBatch,
    credentials: ClientCredentials,
    server: Path,
) -> None:
    n = report.records
    chunks = list(spool.chunks())

    started = time.perf_counter()
    with path.open(newline="", encoding="utf-8") as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1
    report.blocks["csv read"] = rows / (time.perf_counter() - started)

    started = time.perf_counter()
    for chunk in chunks:
        batch_pb2.PaymentRecordList.FromString(chunk)
    report.blocks["protobuf parse"] = n / (time.perf_counter() - started)

    key = secrets.token_bytes(32)
    pairs = 0
    seconds = 0.0
    for chunk in chunks:
        records = batch_pb2.PaymentRecordList.FromString(chunk).records
        started = time.perf_counter()
        for record in records:
            hmac.digest(key, record.id_number.encode(), "sha256")
            hmac.digest(key, record.account_number.encode(), "sha256")
        seconds += time.perf_counter() - started
        pairs += len(records)
    report.blocks["HMAC x2"] = pairs / seconds

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    started = time.perf_counter()
    for chunk in chunks:
        aead.encrypt(os.urandom(12), chunk, b"chunk")
    report.blocks["AES-GCM"] = n / (time.perf_counter() - started)

    report.blocks["SQLite insert"] = _insert_rate(n)
    report.blocks["gRPC stream"] = n / _bare_stream_seconds(chunks, credentials, server)

    report.stages[0].ceiling = report.ceiling("csv read")
    report.stages[1].ceiling = report.ceiling(
        "gRPC stream", "protobuf parse", "HMAC x2", "AES-GCM", "SQLite insert"
    )


def _insert_rate(n: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        database = sqlite3.connect(Path(directory) / "ceiling.db")
        database.execute("PRAGMA journal_mode=WAL")
        database.execute(
            "CREATE TABLE records (record_id TEXT PRIMARY KEY, batch_id TEXT, "
            "row INTEGER, person BLOB, account BLOB, amount INTEGER, state TEXT)"
        )
        rows = (
            (f"b.r{i}", "b", i, hashlib.sha256(b"%d" % i).digest(), b"a" * 32, i, "C")
            for i in range(n)
        )
        started = time.perf_counter()
        with database:
            database.executemany(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )
        seconds = time.perf_counter() - started
        database.close()
    return n / seconds


def _bare_stream_seconds(
    chunks: list[bytes], credentials: ClientCredentials, server_credentials_dir: Path
) -> float:
    """Stream the chunks to a server that only counts them, over mutual TLS,
    with the gateway's own server certificate."""

    def receive(requests: Iterator[bytes], context: Any) -> bytes:
        return b"%d" % sum(len(request) for request in requests)

    handler = grpc.method_handlers_generic_handler(
        "bench.Sink", {"Take": grpc.stream_unary_rpc_method_handler(receive)}
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2),
        options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)],
    )
    server.add_generic_rpc_handlers((handler,))
    server_credentials = grpc.ssl_server_credentials(
        [
            (
                (server_credentials_dir / "key.pem").read_bytes(),
                (server_credentials_dir / "cert.pem").read_bytes(),
            )
        ],
        root_certificates=credentials.ca,
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", server_credentials)
    server.start()
    try:
        channel = grpc.secure_channel(
            f"localhost:{port}",
            grpc.ssl_channel_credentials(
                credentials.ca, credentials.key, credentials.cert
            ),
            options=[
                ("grpc.max_send_message_length", 16 * 1024 * 1024),
                ("grpc.ssl_target_name_override", "localhost"),
            ],
        )
        take = channel.stream_unary(
            "/bench.Sink/Take",
            request_serializer=None,
            response_deserializer=None,
        )
        started = time.perf_counter()
        take(iter(chunks), timeout=600)
        seconds = time.perf_counter() - started
        channel.close()
    finally:
        server.stop(0)
    return seconds


# -- the report ------------------------------------------------------------------


def _print(report: Report) -> None:
    print()
    print(
        f"{'stage':<10} {'seconds':>9} {'records/s':>12} {'ceiling/s':>12} {'ratio':>6}"
    )
    for stage in report.stages:
        against = f"{stage.ceiling:12,.0f}" if stage.ceiling else f"{'':>12}"
        ratio = f"{stage.rate / stage.ceiling:6.2f}" if stage.ceiling else f"{'':>6}"
        # A stage the earlier ones already finished (results reported while
        # payments were still being delivered) has no meaningful rate.
        shown = f"{stage.rate:12,.0f}" if stage.seconds >= 0.01 else f"{'done':>12}"
        print(f"{stage.name:<10} {stage.seconds:9.2f} {shown} {against} {ratio}")
    print()
    print("building blocks (records/s):")
    for name, rate in report.blocks.items():
        print(f"  {name:<16} {rate:14,.0f}")
    for who, mib in report.peak_rss_mib.items():
        print(f"peak RSS of the {who}: {mib:,.0f} MiB")
    for who, seconds in report.cpu_seconds.items():
        print(f"processor time of the {who}: {seconds:,.1f} s")
    print("verify and deliver overlap; both are timed from the end of submit")
    print(f"file to acknowledged instructions: {report.end_to_end_seconds:.1f} s")

    rate = report.records / report.end_to_end_seconds
    ceiling = report.ceiling(*report.blocks)
    peak = max(report.peak_rss_mib.values())
    print()
    print(
        f"end-to-end: {rate:,.0f} records/s; ceiling: {ceiling:,.0f} records/s; "
        f"ratio: {rate / ceiling:.2f}; peak RSS: {peak:,.0f} MiB"
    )
