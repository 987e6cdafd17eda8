"""Scan a running gateway's TLS endpoint with sslyze and check it against policy.

Usage::

    .venv/bin/python scripts/tls_scan.py --host 127.0.0.1 --port 7443 \\
        --client-cert creds/cqrcb/cert.pem --client-key creds/cqrcb/key.pem \\
        --ca pki/ca.pem [--json scan.json]

The client certificate must be one the gateway accepts: sslyze completes its
handshakes with it, and it is the positive control of the client-certificate
probe.

The policy the scan enforces (see ``evaluate``):
- SSL 2.0, SSL 3.0, TLS 1.0 and TLS 1.1 are refused outright;
- TLS 1.2 offers only ECDHE key exchange with AEAD ciphers (GCM, ChaCha20-
  Poly1305, CCM): no static RSA, no CBC, no RC4, no NULL or anonymous suites;
- TLS 1.3 is offered;
- the server requires a client certificate (mutual TLS): a TLS 1.2 and a
  TLS 1.3 connection without one are refused, while the same connection with
  the given certificate is served.

sslyze's own client-authentication detection is not used: against gRPC's
TLS stack its TLS 1.3 probe fails with "peer closed the connection" (the
server's refusal), and with a client certificate it reports client
authentication as disabled. The probe here uses Python's ``ssl`` instead.

How the scanner is found. sslyze pins an older ``cryptography`` than the
project's virtualenv accepts, so it lives apart, in ``.venv-sslyze/`` at the
repository root (kept out of git). When this script runs under an interpreter
without sslyze, it creates that virtualenv with the pinned ``SSLYZE`` from
PyPI and runs itself again inside it. The script imports nothing from the
project, so it runs in that foreign virtualenv unchanged.

Exit codes are part of the contract with ``tests/test_tls_scan.py``:
0 the endpoint meets the policy; 1 it violates it (each violation is
printed); 2 the scan could not reach the endpoint or did not complete;
3 the scanner could not be installed (for instance without network), which
the test reports as a skip, never as a pass.

Threats this answers: a regression that re-enables a legacy protocol version
or a weak suite (for example after a gRPC upgrade changes defaults, or when
``GRPC_SSL_CIPHER_SUITES`` is not applied before gRPC starts), and a server
that stops demanding client certificates.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

SSLYZE = "sslyze==6.3.1"
ROOT = Path(__file__).resolve().parent.parent
SCANNER_VENV = ROOT / ".venv-sslyze"

EXIT_OK = 0
EXIT_POLICY_VIOLATED = 1
EXIT_SCAN_FAILED = 2
EXIT_SCANNER_UNAVAILABLE = 3

REFUSED_VERSIONS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1")
AEAD_MARKERS = ("_GCM_", "_CHACHA20_POLY1305_", "_CCM")


class ScannerUnavailableError(Exception):
    """sslyze could not be installed or imported."""


# -- the policy ----------------------------------------------------------------


def is_strong_tls12_suite(name: str) -> bool:
    """ECDHE key exchange and an AEAD cipher, by IANA suite name."""
    return name.startswith("TLS_ECDHE_") and any(m in name for m in AEAD_MARKERS)


def evaluate(scan: dict[str, Any]) -> list[str]:
    """The policy violations in a scan summary; an empty list means compliant.

    ``scan`` is what ``run_sslyze`` returns: ``accepted`` maps a protocol
    version to the IANA names of the suites the server accepted, and
    ``client_auth`` is sslyze's client-authentication requirement.
    """
    violations: list[str] = []
    accepted: dict[str, list[str]] = scan["accepted"]

    for version in REFUSED_VERSIONS:
        if accepted.get(version):
            violations.append(
                f"{version} is accepted ({len(accepted[version])} suites)"
            )

    tls12 = accepted.get("TLSv1.2", [])
    weak = sorted(s for s in tls12 if not is_strong_tls12_suite(s))
    if weak:
        violations.append("TLS 1.2 offers weak suites: " + ", ".join(weak))

    if not accepted.get("TLSv1.3"):
        violations.append("TLS 1.3 is not offered")

    if scan["client_auth"] != "REQUIRED":
        violations.append(
            f"client certificates are {scan['client_auth']}, not REQUIRED"
        )
    return violations


def report(scan: dict[str, Any], violations: list[str]) -> str:
    lines = [f"TLS scan of {scan['target']} with {scan['scanner']}"]
    for version in (*REFUSED_VERSIONS, "TLSv1.2", "TLSv1.3"):
        suites = scan["accepted"].get(version, [])
        lines.append(f"  {version:8} {'offered' if suites else 'refused'}")
        lines.extend(f"           {suite}" for suite in suites)
    lines.append(f"  client certificate: {scan['client_auth']}")
    if violations:
        lines.append("RESULT: FAIL")
        lines.extend(f"  - {v}" for v in violations)
    else:
        lines.append("RESULT: PASS (legacy versions refused, ECDHE+AEAD only, ")
        lines[-1] += "TLS 1.3 offered, client certificate required)"
    return "\n".join(lines)


# -- the scanner ---------------------------------------------------------------


def run_sslyze(
    host: str, port: int, client_cert: Path, client_key: Path
) -> dict[str, list[str]]:
    """The suites the server accepts, per protocol version, by IANA name."""
    import sslyze

    location = sslyze.ServerNetworkLocation(hostname=host, port=port, ip_address=host)
    network = sslyze.ServerNetworkConfiguration(
        tls_server_name_indication="localhost",
        tls_client_auth_credentials=sslyze.ClientAuthenticationCredentials(
            certificate_chain_path=client_cert, key_path=client_key
        ),
    )
    commands = {
        "SSLv2": sslyze.ScanCommand.SSL_2_0_CIPHER_SUITES,
        "SSLv3": sslyze.ScanCommand.SSL_3_0_CIPHER_SUITES,
        "TLSv1.0": sslyze.ScanCommand.TLS_1_0_CIPHER_SUITES,
        "TLSv1.1": sslyze.ScanCommand.TLS_1_1_CIPHER_SUITES,
        "TLSv1.2": sslyze.ScanCommand.TLS_1_2_CIPHER_SUITES,
        "TLSv1.3": sslyze.ScanCommand.TLS_1_3_CIPHER_SUITES,
    }

    scanner = sslyze.Scanner()
    scanner.queue_scans(
        [
            sslyze.ServerScanRequest(
                server_location=location,
                network_configuration=network,
                scan_commands=set(commands.values()),
            )
        ]
    )
    result = next(iter(scanner.get_results()))

    if result.scan_status != sslyze.ServerScanStatusEnum.COMPLETED:
        trace = result.connectivity_error_trace
        reason = "".join(trace.format_exception_only()) if trace else "unknown"
        raise RuntimeError(f"could not connect: {reason.strip()}")
    accepted: dict[str, list[str]] = {}
    for version, command in commands.items():
        attempt = getattr(result.scan_result, command.value)
        if attempt.status != sslyze.ScanCommandAttemptStatusEnum.COMPLETED:
            raise RuntimeError(f"the {version} scan did not complete")
        accepted[version] = sorted(
            s.cipher_suite.name for s in attempt.result.accepted_cipher_suites
        )
    return accepted


# The start of an HTTP/2 conversation: the client preface and empty SETTINGS.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _served(
    host: str,
    port: int,
    ca: Path,
    version: ssl.TLSVersion,
    certificate: tuple[Path, Path] | None,
) -> bool:
    """Whether the server answers HTTP/2 on a connection of this version.

    With TLS 1.3 the client finishes its handshake before the server has
    judged the client certificate, so the answer only shows on the first read.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = context.maximum_version = version
    context.load_verify_locations(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    if certificate is not None:
        context.load_cert_chain(*map(str, certificate))
    try:
        with (
            socket.create_connection((host, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(_H2_PREFACE)
            return len(tls.recv(9)) > 0
    except (ssl.SSLError, ConnectionError, TimeoutError):
        return False


def probe_client_auth(
    host: str, port: int, ca: Path, client_cert: Path, client_key: Path
) -> str:
    """REQUIRED, OPTIONAL, or BROKEN when not even a valid client is served."""
    versions = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    with_cert = [
        _served(host, port, ca, v, (client_cert, client_key)) for v in versions
    ]
    without_cert = [_served(host, port, ca, v, None) for v in versions]
    if not all(with_cert):
        return "BROKEN"
    return "OPTIONAL" if any(without_cert) else "REQUIRED"


def scanner_python() -> Path:
    """The scanner venv's interpreter, creating the venv on first use."""
    python = SCANNER_VENV / "bin" / "python"
    try:
        if not python.exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(SCANNER_VENV)
        check = subprocess.run(
            [
                str(python),
                "-c",
                f"import sslyze; assert sslyze.__version__ == "
                f"{SSLYZE.split('==')[1]!r}",
            ],
            capture_output=True,
            check=False,
        )
        if check.returncode != 0:
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--timeout",
                    "20",
                    "--retries",
                    "1",
                    SSLYZE,
                ],
                check=True,
            )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ScannerUnavailableError(f"could not install {SSLYZE}: {exc}") from exc
    return python


def _have_sslyze() -> bool:
    try:
        import sslyze  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-cert", type=Path, required=True)
    parser.add_argument("--client-key", type=Path, required=True)
    parser.add_argument("--ca", type=Path, required=True, help="the gateway's CA")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)

    # 1. Run inside the scanner's own virtualenv.
    if not _have_sslyze():
        try:
            python = scanner_python()
        except ScannerUnavailableError as exc:
            print(f"SCANNER UNAVAILABLE: {exc}", file=sys.stderr)
            return EXIT_SCANNER_UNAVAILABLE
        env = {**os.environ, "PYTHONNOUSERSITE": "1"}
        env.pop("PYTHONPATH", None)
        return subprocess.run(
            [str(python), str(Path(__file__).resolve()), *argv], env=env, check=False
        ).returncode

    # 2. Scan.
    try:
        accepted = run_sslyze(args.host, args.port, args.client_cert, args.client_key)
    except RuntimeError as exc:
        print(f"SCAN FAILED: {exc}", file=sys.stderr)
        return EXIT_SCAN_FAILED
    scan = {
        "target": f"{args.host}:{args.port}",
        "scanner": SSLYZE,
        "accepted": accepted,
        "client_auth": probe_client_auth(
            args.host, args.port, args.ca, args.client_cert, args.client_key
        ),
    }

    # 3. Judge and report.
    violations = evaluate(scan)
    print(report(scan, violations))
    if args.json is not None:
        args.json.write_text(
            json.dumps({**scan, "violations": violations}, indent=1) + "\n"
        )
    return EXIT_POLICY_VIOLATED if violations else EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
