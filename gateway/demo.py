"""``ykt demo``: the whole flow on one machine, as separate processes.

1. Reference data: the given samples folder, or a generated one.
2. A development PKI and SQLite store under ``OUT/state``; credentials for
   every department and agent bank, issued by the development CA.
3. The gateway as its own process (``ykt serve --dev``).
4. One simulated agent bank per bank in ``agent-banks.csv``, each its own
   process, pulling over gRPC with mutual TLS.
5. Each department file, in manifest order, parsed, signed and streamed by
   its department's credentials.
6. Wait until every batch is closed and late refunds have landed, then read
   every record's outcome back through the department API and export it to
   ``OUT/outcomes.csv`` (no personal data), and print a summary.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from gateway import logs
from gateway.client import (
    ClientCredentials,
    build_submission,
    open_channel,
    record_funds_release,
    submit,
)
from gateway.config import dev_config
from gateway.files import read_department_file
from gateway.reference import import_reference
from gateway.sealing import Tokenizer
from gateway.store import db
from gateway.validate import records_of
from keys.ca import DevelopmentCA, write_credentials
from keys.identity import Identity, Role
from keys.keystore import LocalKeyStore
from ykt.v1 import batch_pb2, services_pb2, services_pb2_grpc

RETURN_DELAY_SECONDS = 2.0
WAIT_SECONDS = 90.0


@dataclass(frozen=True)
class ManifestEntry:
    order: int
    file: str
    county: str
    department: str
    policy_code: str
    period: str

    @property
    def org(self) -> str:
        return f"{self.county}-{self.department}"

    @property
    def batch_id(self) -> str:
        return Path(self.file).stem


def read_manifest(samples: Path) -> list[ManifestEntry]:
    with (samples / "batches" / "manifest.csv").open(encoding="utf-8-sig") as handle:
        entries = [
            ManifestEntry(
                int(r["order"]),
                r["file"],
                r["county"],
                r["department"],
                r["policy_code"],
                r["period"],
            )
            for r in csv.DictReader(handle)
        ]
    return sorted(entries, key=lambda e: e.order)


def agent_banks(samples: Path) -> dict[str, str]:
    """Each agent bank and the connector style it uses."""
    styles: dict[str, str] = {}
    with (samples / "agent-banks.csv").open(encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            held = styles.setdefault(row["agent_bank"], row["connector"])
            if held != row["connector"]:
                raise SystemExit("the demo runs each bank in one connector style")
    return dict(sorted(styles.items()))


def ykt_command(*args: str) -> list[str]:
    """The command line that runs ``ykt`` with this interpreter."""
    return [sys.executable, "-m", "gateway.cli", *args]


class Processes:
    def __init__(self, logs_dir: Path) -> None:
        self._logs = logs_dir
        self._running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = (self._logs / f"{name}.log").open("ab")
        process = subprocess.Popen(command, stdout=log, stderr=log)
        self._running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self._running:
            process.terminate()
        for process in self._running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def run_demo(
    *, samples: Path | None, out: Path, keep_exchange_files: bool = False
) -> int:
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    state, logs_dir = out / "state", out / "logs"
    logs_dir.mkdir(exist_ok=True)
    logs.configure(file=logs_dir / "demo.log")

    # 1. Reference data.
    if samples is None:
        from gateway.samplegen import generate

        samples = generate(out / "samples")
        print(f"generated a fictional data set in {samples}")
    manifest = read_manifest(samples)
    banks = agent_banks(samples)

    # 2. PKI, store and credentials.
    config = dev_config(state, "127.0.0.1:0", None)
    ca = DevelopmentCA(state / "pki")
    engine = db.connect(config.database_url)
    db.migrate(engine)
    tokenizer = Tokenizer(LocalKeyStore(config.keys_directory).token_key())
    import_reference(engine, tokenizer, samples)
    engine.dispose()
    clients = state / "clients"
    for org in sorted({e.org for e in manifest}):
        _issue(ca, Identity(Role.DEPARTMENT, org), clients / f"department-{org}")
    for bank in banks:
        _issue(ca, Identity(Role.BANK, bank), clients / f"bank-{bank}")

    processes = Processes(logs_dir)
    try:
        # 3. The gateway.
        ready = state / "gateway.port"
        ready.unlink(missing_ok=True)
        gateway = processes.start(
            "gateway",
            ykt_command(
                "serve",
                "--dev",
                "--state",
                str(state),
                "--listen",
                "127.0.0.1:0",
                "--ready-file",
                str(ready),
                *(["--keep-exchange-files"] if keep_exchange_files else []),
            ),
        )
        port = wait_for_port(ready, gateway)
        target = f"127.0.0.1:{port}"
        print(f"gateway is serving on {target} (mutual TLS)")

        # 4. The agent banks, each in its own connector style.
        for bank, connector in banks.items():
            transport = (
                ["--gateway", target]
                if connector == "grpc-pull"
                else ["--exchange", str(state / "exchange")]
            )
            processes.start(
                f"bank-{bank}",
                ykt_command(
                    "bank",
                    "simulate",
                    "--bank",
                    bank,
                    "--connector",
                    connector,
                    *transport,
                    "--ledgers",
                    str(samples / "banks"),
                    "--credentials",
                    str(clients / f"bank-{bank}"),
                    "--crl",
                    str(ca.crl_path),
                    "--state",
                    str(out / "banks" / bank),
                    "--return-delay",
                    str(RETURN_DELAY_SECONDS),
                ),
            )
        print(
            "agent banks: "
            + ", ".join(f"{bank} ({style})" for bank, style in banks.items())
        )

        # 5. The department files, in manifest order.
        for entry in manifest:
            credentials = ClientCredentials(clients / f"department-{entry.org}")
            department_file = read_department_file(samples / "batches" / entry.file)
            records = records_of(department_file.iter_rows())
            requests = build_submission(
                credentials.signer(),
                batch_id=entry.batch_id,
                county=entry.county,
                department=entry.department,
                policy_code=entry.policy_code,
                period=entry.period,
                records=records,
                source_file=entry.file,
            )
            with open_channel(target, credentials) as channel:
                response = submit(channel, requests)
                # Art. 19: the demo's treasury releases the funds at once.
                record_funds_release(channel, entry.batch_id, f"GK-{entry.batch_id}")
            refused_by = (
                "rejected so far (an earlier run submitted it)"
                if response.already_submitted
                else "rejected by the preset rules"
            )
            print(
                f"submitted {entry.file}: {response.record_count} records, "
                f"{response.rejected_count} {refused_by}"
            )

        # 6. Outcomes.
        _wait_until_closed(target, clients, manifest)
        time.sleep(RETURN_DELAY_SECONDS * 2 + 1.5)
        outcomes = _export(target, clients, manifest, out / "outcomes.csv")
    finally:
        processes.stop_all()
    _print_summary(manifest, outcomes)
    print(f"outcomes written to {out / 'outcomes.csv'}")
    print(f"finished in {time.monotonic() - started:.1f} s; everything is under {out}")
    return 0


def _issue(ca: DevelopmentCA, identity: Identity, directory: Path) -> None:
    if not (directory / "cert.pem").exists():
        write_credentials(ca.dev_generate_credentials(identity), ca.cert, directory)


def wait_for_port(
    ready: Path, process: subprocess.Popen[bytes], log: Path = Path("logs/gateway.log")
) -> int:
    """The port a starting gateway writes to its ready file; stops if it died."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited at start; see {log}")
        if ready.exists() and ready.read_text().strip():
            return int(ready.read_text())
        time.sleep(0.1)
    raise SystemExit(f"the gateway did not start in time; see {log}")


def _wait_until_closed(
    target: str, clients: Path, manifest: list[ManifestEntry]
) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    pending = list(manifest)
    while pending and time.monotonic() < deadline:
        still = []
        for entry in pending:
            credentials = ClientCredentials(clients / f"department-{entry.org}")
            with open_channel(target, credentials) as channel:
                stub = services_pb2_grpc.DepartmentServiceStub(channel)
                batch = stub.GetBatch(
                    services_pb2.GetBatchRequest(batch_id=entry.batch_id)
                )
            if batch.state != batch_pb2.BATCH_STATE_CLOSED:
                still.append(entry)
        pending = still
        if pending:
            time.sleep(0.5)
    if pending:
        print(
            f"warning: {len(pending)} batch(es) still open; their records show PENDING"
        )


def _export(
    target: str, clients: Path, manifest: list[ManifestEntry], path: Path
) -> dict[str, Counter[str]]:
    summary: dict[str, Counter[str]] = {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "row", "outcome", "reasons", "messages"])
        for entry in manifest:
            credentials = ClientCredentials(clients / f"department-{entry.org}")
            counter: Counter[str] = Counter()
            with open_channel(target, credentials) as channel:
                stub = services_pb2_grpc.DepartmentServiceStub(channel)
                for record in stub.ListRecords(
                    services_pb2.ListRecordsRequest(batch_id=entry.batch_id)
                ):
                    outcome = batch_pb2.Outcome.Name(record.outcome).removeprefix(
                        "OUTCOME_"
                    )
                    counter[outcome] += 1
                    reasons = ";".join(r.code for r in record.reasons)
                    messages = "；".join(r.message for r in record.reasons)
                    writer.writerow(
                        [entry.file, record.row, outcome, reasons, messages]
                    )
            summary[entry.file] = counter
    return summary


def _print_summary(
    manifest: list[ManifestEntry], outcomes: dict[str, Counter[str]]
) -> None:
    columns = ["PAID", "REJECTED", "FAILED", "RETURNED", "PENDING"]
    width = max(len(e.file) for e in manifest)
    print()
    print(
        f"{'file':<{width}}  {'records':>7}  " + "  ".join(f"{c:>8}" for c in columns)
    )
    for entry in manifest:
        counts = outcomes.get(entry.file, Counter())
        cells = "  ".join(f"{counts.get(c, 0):>8}" for c in columns)
        print(f"{entry.file:<{width}}  {sum(counts.values()):>7}  {cells}")
    print()


__all__ = ["run_demo"]
