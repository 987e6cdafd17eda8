"""The ``ykt`` command line: keys, serve, submit, outcomes, bank, demo."""

from __future__ import annotations

import argparse
import csv
import gc
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from gateway import logs
from gateway.certs import add_certs_command
from gateway.tls import restrict_cipher_suites
from gateway.workdays import add_calendar_commands


def _keys(args: argparse.Namespace) -> int:
    from cryptography import x509

    from keys.ca import DevelopmentCA, cert_pem, write_credentials
    from keys.identity import Identity, Purpose, Role

    ca = DevelopmentCA.open_or_create(Path(args.state) / "pki")
    if args.keys_command == "init":
        print(f"development CA ready: {ca.ca_path}")
    elif args.keys_command == "issue":
        print(
            "NOTE: generating private keys here is a development convenience; in "
            "production each party sends a CSR (ykt keys sign-csr).",
            file=sys.stderr,
        )
        identity = Identity(Role(args.role), args.org)
        credentials = ca.dev_generate_credentials(identity, days=args.days)
        write_credentials(credentials, ca.cert, Path(args.out))
        print(f"wrote credentials for {identity.uri} to {args.out}")
    elif args.keys_command == "sign-csr":
        csr = x509.load_pem_x509_csr(Path(args.csr).read_bytes())
        identity = Identity(Role(args.role), args.org)
        cert = ca.sign_csr(csr, identity, Purpose(args.purpose), days=args.days)
        Path(args.out).write_bytes(cert_pem(cert))
        print(
            f"issued {args.purpose} certificate {cert.serial_number:x} "
            f"for {identity.uri}"
        )
    elif args.keys_command == "revoke":
        ca.revoke(int(args.serial, 16))
        print(f"revoked {args.serial}; CRL rewritten at {ca.crl_path}")
    elif args.keys_command == "crl":
        ca.write_crl()
        print(f"CRL written to {ca.crl_path}")
    elif args.keys_command == "list":
        revoked = {r.serial for r in ca.revocations()}
        writer = csv.writer(sys.stdout)
        writer.writerow(["serial", "subject", "not_after", "revoked"])
        for cert in ca.issued():
            writer.writerow(
                [
                    f"{cert.serial_number:x}",
                    cert.subject.rfc4514_string(),
                    cert.not_valid_after_utc.isoformat(),
                    cert.serial_number in revoked,
                ]
            )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from gateway.config import GatewayConfig, dev_config
    from gateway.core import Settings
    from gateway.server import build

    if args.dev:
        if not args.state:
            raise SystemExit("--dev needs --state DIR")
        config = dev_config(
            Path(args.state),
            args.listen,
            args.metrics,
            args.database_url,
            keep_exchange_files=args.keep_exchange_files,
        )
    elif args.config:
        config = GatewayConfig.from_toml(Path(args.config))
    else:
        raise SystemExit("give --config FILE, or --dev --state DIR for development")
    settings = Settings(
        set_size=args.set_size or Settings.set_size,
        lease_seconds=args.lease_seconds or Settings.lease_seconds,
        deadline_margin_hours=(
            config.deadline_margin_hours or Settings.deadline_margin_hours
        ),
        retention_days=config.retention_days or Settings.retention_days,
    )
    gateway = build(config, settings=settings)
    if config.metrics:
        host, _, port = config.metrics.rpartition(":")
        start_http_server(
            int(port), addr=host or "127.0.0.1", registry=gateway.metrics.registry
        )
    # Everything built so far lives as long as the process: modules, the
    # schema, the compiled statements, the keys' objects. Frozen, it is no
    # longer walked by every full garbage collection, which a busy gateway
    # runs every few seconds; that walk cost about 6% of its processor time.
    # Garbage left over from building is collected first, not kept forever.
    gc.collect()
    gc.freeze()
    gateway.server.start()
    if args.ready_file:
        Path(args.ready_file).write_text(f"{gateway.port}\n")
    print(f"gateway listening on port {gateway.port}", file=sys.stderr)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    gateway.stop()
    return 0


def _import(args: argparse.Namespace) -> int:
    from gateway.config import dev_config
    from gateway.reference import import_reference
    from gateway.sealing import Tokenizer
    from gateway.store import db
    from keys.keystore import LocalKeyStore

    config = dev_config(Path(args.state), "127.0.0.1:0", None)
    engine = db.connect(config.database_url)
    db.migrate(engine)
    tokenizer = Tokenizer(LocalKeyStore(config.keys_directory).token_key())
    counts = import_reference(engine, tokenizer, Path(args.reference))
    for name, count in counts.items():
        print(f"{name}: {count}")
    return 0


def _bank_simulate(args: argparse.Namespace) -> int:
    import datetime as dt

    from connectors.faults import Faults
    from connectors.simulator import LedgerBook, SimulatedBankCore
    from gateway.client import ClientCredentials
    from gateway.core import utcnow
    from keys.trust import TrustStore

    # The ledger book is a copy of the ledgers, which are personal data: kept
    # only where --ledger-book asks, otherwise in a file no one else can open
    # and that no crash leaves behind.
    book_path = Path(args.ledger_book) if args.ledger_book else None
    credentials = ClientCredentials(Path(args.credentials))
    core = SimulatedBankCore(
        args.bank,
        LedgerBook.open(Path(args.ledgers), book_path),
        Path(args.state) / "core.db",
        return_delay=dt.timedelta(seconds=args.return_delay),
    )
    trust = TrustStore(
        Path(args.credentials) / "ca.pem", [Path(args.crl)], clock=utcnow
    )
    faults = Faults.parse(args.faults or "", args.fault_seed)
    runner: Any
    if args.connector == "grpc-pull":
        from connectors.grpc_pull import GrpcPullRunner
        from gateway.client import open_channel

        if not args.gateway:
            raise SystemExit("grpc-pull needs --gateway HOST:PORT")
        runner = GrpcPullRunner(
            open_channel(args.gateway, credentials),
            core,
            credentials.signer(),
            trust,
            faults=faults,
        )
    else:
        from connectors.file_bank import FileBankRunner
        from connectors.file_protocol import Style

        if not args.exchange:
            raise SystemExit(f"{args.connector} needs --exchange DIR")
        runner = FileBankRunner(
            Style(args.connector),
            Path(args.exchange),
            core,
            credentials.signer(),
            trust,
            faults=faults,
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner.run_forever(stop)
    return 0


def _validate(args: argparse.Namespace) -> int:
    import datetime as dt

    from gateway import validate
    from gateway.files import FileFormatError, read_department_file
    from gateway.reasons import MESSAGES_ZH, ReasonCode
    from gateway.reference import policy_rules

    path = Path(args.file)
    try:
        source = read_department_file(path)
        if args.gateway:
            report = _validate_online(args, source)
        else:
            policy = (
                policy_rules(Path(args.policies), args.policy)
                if args.policies
                else None
            )
            if policy is None:
                print("note: no --policies file; the policy's limit is not checked")
            report = validate.validate_offline(
                source, policy, args.period, dt.date.today()
            )
    except FileFormatError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2

    for problem in report.file_problems:
        print(f"file: {problem}")
    counts = report.counts()
    width = max((len(code) for code in counts), default=0)
    for code, count in sorted(counts.items(), key=lambda item: -item[1]):
        known = code in ReasonCode.__members__
        message = MESSAGES_ZH[ReasonCode(code)] if known else ""
        print(f"{code:<{width}}  {count:>7}  {message}".rstrip())
    print(f"records: {len(report.verdicts)}")
    out = Path(args.out or f"{path.stem}.verdicts.csv")
    validate.write_verdicts(out, report.verdicts)
    print(f"verdicts: {out}")
    refused = any(not v.accepted for v in report.verdicts) or report.file_problems
    return 1 if refused else 0


def _validate_online(args: argparse.Namespace, source: Any) -> Any:
    from gateway import validate
    from gateway.client import ClientCredentials, build_validation, open_channel
    from keys.identity import Identity

    credentials = ClientCredentials(Path(args.credentials))
    signer = credentials.signer()
    identity: Identity = signer.identity
    county, _, department = identity.org.partition("-")
    rows = list(source.iter_rows())
    requests = build_validation(
        signer,
        batch_id=validate.batch_id_for(source.path, args.period),
        county=county,
        department=department,
        policy_code=args.policy,
        period=args.period,
        records=validate.records_of(rows),
        source_file=source.path.name,
    )
    file_rows = {row.row: row.file_row for row in rows}
    report = validate.Report()
    with open_channel(args.gateway, credentials) as channel:
        report.verdicts.extend(validate.validate_online(channel, requests, file_rows))
    problem = validate.check_total(source, rows)
    if problem:
        report.file_problems.append(problem)
    return report


def _deadlines(args: argparse.Namespace) -> int:
    from gateway.client import ClientCredentials, open_channel
    from ykt.v1 import services_pb2, services_pb2_grpc

    credentials = ClientCredentials(Path(args.credentials))
    with open_channel(args.gateway, credentials) as channel:
        stub = services_pb2_grpc.AdminServiceStub(channel)
        response = stub.ListDeadlines(
            services_pb2.ListDeadlinesRequest(
                bank_code=args.bank or "",
                at_risk_only=args.at_risk,
                breached_only=args.breached,
            )
        )
    print(f"{'due (UTC)':<20} {'status':<9} {'kind':<14} {'bank':<8} subject")
    for item in response.deadlines:
        due = item.due_at.ToDatetime().strftime("%Y-%m-%d %H:%M")
        flags = " provisional" if item.provisional else ""
        flags += " (breach recorded)" if item.breached and item.status == "met" else ""
        print(
            f"{due:<20} {item.status:<9} {item.kind:<14} {item.bank_code:<8} "
            f"{item.subject_id}{flags}"
        )
    print(f"deadlines: {len(response.deadlines)}")
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from cryptography import x509

    from gateway import audit
    from gateway.config import GatewayConfig
    from gateway.store import db

    if args.config:
        config = GatewayConfig.from_toml(Path(args.config))
        database_url, signing_cert = config.database_url, config.signing_cert
    elif args.state:
        state = Path(args.state)
        database_url = args.database_url or db.sqlite_url(state / "gateway.db")
        signing_cert = state / "gateway" / "signing.pem"
    else:
        raise SystemExit("give --config FILE, or --state DIR")
    pinned = x509.load_pem_x509_certificate(signing_cert.read_bytes())
    engine = db.connect(database_url)
    try:
        result = audit.verify(engine, trusted_signer=pinned)
    finally:
        engine.dispose()
    if result.finding is not None:
        print(f"AUDIT LOG BROKEN: {result.finding}")
        return 1
    print(
        f"audit log intact: {result.entries} entries, "
        f"{result.checkpoints} signed checkpoints"
    )
    return 0


def _config_of(args: argparse.Namespace) -> Any:
    from gateway.config import GatewayConfig, dev_config

    if args.config:
        return GatewayConfig.from_toml(Path(args.config))
    if args.state:
        return dev_config(Path(args.state), "127.0.0.1:0", None, args.database_url)
    raise SystemExit("give --config FILE, or --state DIR")


def _retention_run(args: argparse.Namespace) -> int:
    from gateway import retention
    from gateway.server import open_core

    core = open_core(_config_of(args))
    try:
        report = retention.run(core)
    finally:
        core.engine.dispose()
    if report.skipped:
        print("another gateway is running retention; nothing done")
        return 0
    print(f"batches wrapped under their retention epoch: {report.rewrapped}")
    print(f"batches shredded: {report.shredded_batches}")
    for epoch in report.destroyed_epochs:
        print(f"destroyed key-encryption key {epoch}")
    return 0


def _disclose(args: argparse.Namespace) -> int:
    from gateway.personal_data import write_public_notice
    from gateway.server import open_core

    core = open_core(_config_of(args))
    out = Path(args.out or f"{args.batch}.notice.{args.format}")
    try:
        people = write_public_notice(
            core,
            args.batch,
            out,
            contact=args.contact,
            department_org=args.department,
            xlsx=args.format == "xlsx",
        )
    finally:
        core.engine.dispose()
    print(f"public notice of {people} people written to {out}")
    return 0


def _pii_scan(args: argparse.Namespace) -> int:
    from gateway import pii_scan

    values = pii_scan.sample_values(Path(args.samples))
    print(
        f"looking for {len(values.names)} names, {len(values.id_numbers)} ID "
        f"numbers and {len(values.accounts)} account numbers"
    )
    hits = pii_scan.scan(Path(args.folder), values)
    for hit in hits:
        print(f"FOUND {hit.kind} ({hit.encoding}) in {hit.path}")
    files = sum(1 for _ in pii_scan.files(Path(args.folder)))
    print(f"files scanned: {files}; files with personal data in clear: {len(hits)}")
    return 1 if hits else 0


def _bench(args: argparse.Namespace) -> int:
    from gateway.bench import run_bench

    return run_bench(args.records, Path(args.out), args.pullers)


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return run_demo(
        samples=Path(args.samples) if args.samples else None,
        out=Path(args.out),
        keep_exchange_files=args.keep_exchange_files,
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ykt", description="One-card subsidy gateway")
    root.add_argument("--log-level", default="INFO")
    commands = root.add_subparsers(dest="command", required=True)

    keys = commands.add_parser("keys", help="development CA: issue, sign CSRs, revoke")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    for name in ("init", "issue", "sign-csr", "revoke", "crl", "list"):
        sub = keys_commands.add_parser(name)
        sub.add_argument("--state", required=True, help="the gateway's state folder")
        if name in ("issue", "sign-csr"):
            sub.add_argument("--role", required=True)
            sub.add_argument("--org", required=True)
            sub.add_argument("--out", required=True)
            sub.add_argument("--days", type=int, default=365)
        if name == "sign-csr":
            sub.add_argument("--csr", required=True)
            sub.add_argument("--purpose", choices=["tls", "signing"], required=True)
        if name == "revoke":
            sub.add_argument("--serial", required=True, help="hex serial number")
    keys.set_defaults(func=_keys)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config")
    serve.add_argument(
        "--dev", action="store_true", help="DEVELOPMENT: embedded defaults"
    )
    serve.add_argument("--state")
    serve.add_argument("--listen", default="127.0.0.1:7443")
    serve.add_argument("--metrics", default=None)
    serve.add_argument(
        "--set-size", type=int, help="checks or instructions per signed set"
    )
    serve.add_argument(
        "--lease-seconds", type=int, help="how long a pulled set stays leased"
    )
    serve.add_argument(
        "--keep-exchange-files",
        action="store_true",
        help="keep exchange files after the bank acknowledged them (inspection)",
    )
    serve.add_argument("--database-url", default=None)
    serve.add_argument("--ready-file", help="write the bound port here once serving")
    serve.set_defaults(func=_serve)

    admin = commands.add_parser("admin", help="operator tasks on the gateway host")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    imp = admin_commands.add_parser(
        "import", help="import policy list, registry, lists"
    )
    imp.add_argument("--state", required=True)
    imp.add_argument("--reference", required=True, help="folder in the samples layout")
    imp.set_defaults(func=_import)

    bank = commands.add_parser("bank", help="the bank side")
    bank_commands = bank.add_subparsers(dest="bank_command", required=True)
    sim = bank_commands.add_parser("simulate", help="simulate an agent bank")
    sim.add_argument("--bank", required=True, help="the bank's code, e.g. CQRCB")
    sim.add_argument("--ledgers", required=True, help="folder of ledger CSVs")
    sim.add_argument(
        "--ledger-book",
        help="keep the SQLite copy of the ledgers at this path, shared by the "
        "bank's pullers and rebuilt when the CSVs change (default: a private "
        "temporary copy that nothing outlives, not even a crash)",
    )
    sim.add_argument(
        "--connector",
        default="grpc-pull",
        choices=("grpc-pull", "fixed-width-file", "iso20022-file"),
    )
    sim.add_argument("--gateway", help="host:port, for grpc-pull")
    sim.add_argument("--exchange", help="the shared exchange folder, for files")
    sim.add_argument(
        "--faults",
        help="inject faults, e.g. drop=0.1,slow=0.2,duplicate-results=0.5,"
        "crash-before-ack=0.05,truncate=0.05 (see connectors/faults.py)",
    )
    sim.add_argument("--fault-seed", type=int, default=None)
    sim.add_argument(
        "--credentials", required=True, help="the bank's credentials folder"
    )
    sim.add_argument("--crl", required=True, help="the CA's CRL, PEM")
    sim.add_argument(
        "--state", required=True, help="folder of the simulated core's database"
    )
    sim.add_argument(
        "--return-delay",
        type=float,
        default=3.0,
        help="seconds before a credit marked to return comes back (default 3)",
    )
    sim.set_defaults(func=_bank_simulate)

    check = commands.add_parser(
        "validate", help="check a department file before submitting it"
    )
    check.add_argument("file")
    check.add_argument("--policy", required=True, help="policy code, e.g. CQ-NY-001")
    check.add_argument("--period", required=True, help="2026 or 2026-12")
    check.add_argument("--policies", help="the policy list CSV, for offline checks")
    check.add_argument("--gateway", help="host:port: run a dry run on the gateway")
    check.add_argument("--credentials", help="the department's credentials folder")
    check.add_argument(
        "--out", help="verdict CSV (default: <file stem>.verdicts.csv, here)"
    )
    check.set_defaults(func=_validate)

    watch = commands.add_parser(
        "deadlines", help="the agent banks' deadlines, for finance staff"
    )
    watch.add_argument("--gateway", required=True, help="host:port")
    watch.add_argument("--credentials", required=True, help="finance credentials")
    watch.add_argument("--bank", help="only this bank's deadlines")
    watch.add_argument("--at-risk", action="store_true")
    watch.add_argument("--breached", action="store_true")
    watch.set_defaults(func=_deadlines)

    audit_parser = commands.add_parser("audit", help="the tamper-evident audit log")
    audit_commands = audit_parser.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify", help="check the hash chain and the signed checkpoints"
    )
    verify.add_argument("--state", help="a development gateway's state folder")
    verify.add_argument("--database-url", help="with --state: another database")
    verify.add_argument("--config", help="a production gateway's configuration")
    verify.set_defaults(func=_audit_verify)

    keep = commands.add_parser(
        "retention", help="destroy the keys of batches past their retention"
    )
    keep_commands = keep.add_subparsers(dest="retention_command", required=True)
    run = keep_commands.add_parser("run", help="one retention pass")
    run.add_argument("--state", help="a development gateway's state folder")
    run.add_argument("--database-url", help="with --state: another database")
    run.add_argument("--config", help="a production gateway's configuration")
    run.set_defaults(func=_retention_run)

    disclose = commands.add_parser(
        "disclose", help="the public notice (公示) of a batch's payments"
    )
    disclose.add_argument("--batch", required=True)
    disclose.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    disclose.add_argument(
        "--contact", required=True, help="the department's channel for questions"
    )
    disclose.add_argument(
        "--department", required=True, help="the batch's department, e.g. 500154-NYNC"
    )
    disclose.add_argument("--out", help="default: BATCH.notice.FORMAT")
    disclose.add_argument("--state", help="a development gateway's state folder")
    disclose.add_argument("--database-url", help="with --state: another database")
    disclose.add_argument("--config", help="a production gateway's configuration")
    disclose.set_defaults(func=_disclose)

    scan = commands.add_parser(
        "pii-scan", help="search a folder for a sample set's personal data"
    )
    scan.add_argument("--samples", required=True, help="the sample set's folder")
    scan.add_argument("folder", help="the folder to search, e.g. demo-out")
    scan.set_defaults(func=_pii_scan)

    bench = commands.add_parser(
        "bench", help="a batch of N records through the real path, with its ceiling"
    )
    bench.add_argument("--records", type=int, default=100_000)
    bench.add_argument(
        "--out", default="bench-out", help="work folder, emptied at the start"
    )
    bench.add_argument(
        "--pullers",
        type=int,
        default=4,
        help="bank puller processes sharing the bank's core (default 4)",
    )
    bench.set_defaults(func=_bench)

    add_calendar_commands(commands)
    add_certs_command(commands)

    demo = commands.add_parser("demo", help="run the whole flow on one machine")
    demo.add_argument("--samples")
    demo.add_argument("--out", default="demo-out")
    demo.add_argument(
        "--keep-exchange-files",
        action="store_true",
        help="keep the files exchanged with file-connected banks",
    )
    demo.set_defaults(func=_demo)
    return root


def main(argv: list[str] | None = None) -> int:
    restrict_cipher_suites()
    args = parser().parse_args(argv)
    logs.configure(getattr(__import__("logging"), args.log_level.upper()))
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
