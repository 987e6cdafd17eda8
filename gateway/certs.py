"""``ykt certs``: every certificate the gateway knows of, and how soon it expires.

For security staff. One row per certificate: the development CA's issued
certificates, the trusted CAs, and the gateway's own TLS and signing
certificates, each with its role and organisation (from the ``urn:ykt`` URI
SAN), purpose, notAfter, days left, revocation state and a warning level.
A text table by default, JSON with ``--json``.

Invariants and threats:
- The report only reads. ``--state DIR`` opens an existing development CA
  and never creates one (``gateway.config.dev_config`` would), and no private
  key is opened.
- Revocation is judged exactly as the gateway judges it (``TrustStore``): a
  certificate whose issuer has no CRL, or only a stale one, is ``unknown``,
  never ``not_revoked``: the gateway refuses such callers, and the report
  must not look reassuring when the gateway is refusing.
- Rows name organisations and roles, never people: the organisation column
  comes from the ykt identity (for a CA, its common name), not from a
  subject field an external CA may have filled with a person's name.
- Warning levels: ``expired`` (past notAfter), then ``within_3_days``,
  ``within_14_days``, ``within_30_days``, else ``ok``. Rows are sorted most
  urgent first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from keys.ca import DevelopmentCA
from keys.identity import Identity, IdentityError, purpose_of
from keys.trust import CertificateRevokedError, StaleCrlError, TrustStore

WARNING_DAYS = (3, 14, 30)
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class CertificateRow:
    serial_number: str  # hex, as ``ykt keys revoke --serial`` takes it
    serial_decimal: str  # as the x509_cert_* metrics label it
    sources: str  # comma-separated: gateway, trusted_ca, issued
    role: str  # "ca" for a CA certificate
    organisation: str
    purpose: str  # tls, signing or ca
    not_after: str  # ISO 8601, UTC
    days_left: int  # whole days, toward zero; negative once expired
    revocation: str  # revoked, not_revoked, unknown, or n/a for a CA
    level: str  # revoked, expired, within_3_days, within_14_days, within_30_days, ok


def warning_level(not_after: dt.datetime, now: dt.datetime) -> str:
    if not_after <= now:
        return "expired"
    left = not_after - now
    for days in WARNING_DAYS:
        if left <= dt.timedelta(days=days):
            return f"within_{days}_days"
    return "ok"


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def _ca_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _revocation(cert: x509.Certificate, trust: TrustStore) -> str:
    try:
        trust.check_not_revoked(cert)
    except CertificateRevokedError:
        return "revoked"
    except StaleCrlError:
        return "unknown"
    return "not_revoked"


def _row(
    cert: x509.Certificate, sources: list[str], trust: TrustStore, now: dt.datetime
) -> CertificateRow:
    not_after = cert.not_valid_after_utc
    left = (not_after - now).total_seconds()
    # Whole days, truncated toward zero: -2 reads "expired two days ago".
    days_left = int(left / SECONDS_PER_DAY)

    if _is_ca(cert):
        role, organisation, purpose, revocation = "ca", _ca_name(cert), "ca", "n/a"
    else:
        try:
            identity = Identity.from_certificate(cert)
            role, organisation = identity.role.value, identity.org
            purpose = purpose_of(cert).value
        except IdentityError:
            role, organisation, purpose = "", "", ""
        revocation = _revocation(cert, trust)

    return CertificateRow(
        serial_number=f"{cert.serial_number:x}",
        serial_decimal=str(cert.serial_number),
        sources=",".join(sources),
        role=role,
        organisation=organisation,
        purpose=purpose,
        not_after=not_after.isoformat(),
        days_left=days_left,
        revocation=revocation,
        # A revoked certificate is no longer usable, whatever its expiry.
        level="revoked" if revocation == "revoked" else warning_level(not_after, now),
    )


def build_rows(
    certificates: Iterable[tuple[str, x509.Certificate]],
    trust: TrustStore,
    now: dt.datetime,
) -> list[CertificateRow]:
    """One row per distinct certificate (issuer and serial), most urgent first."""
    found: dict[tuple[bytes, int], tuple[x509.Certificate, list[str]]] = {}
    for source, cert in certificates:
        key = (cert.issuer.public_bytes(), cert.serial_number)
        _, sources = found.setdefault(key, (cert, []))
        if source not in sources:
            sources.append(source)

    rows = [_row(cert, sources, trust, now) for cert, sources in found.values()]

    return sorted(rows, key=lambda r: (r.not_after, r.serial_number))


@dataclass(frozen=True)
class CertificatePaths:
    """Where one gateway's certificates are; nothing here is a private key."""

    gateway_certificates: tuple[Path, ...]
    ca_bundle: Path
    crls: tuple[Path, ...]
    dev_ca_directory: Path | None

    @classmethod
    def for_state(cls, state: Path) -> CertificatePaths:
        """The layout ``ykt serve --dev --state DIR`` creates."""
        pki = state / "pki"
        if not (pki / "ca.pem").exists():
            raise FileNotFoundError(f"no development CA under {pki}")
        return cls(
            gateway_certificates=(
                state / "gateway" / "cert.pem",
                state / "gateway" / "signing.pem",
            ),
            ca_bundle=pki / "ca.pem",
            crls=(pki / "crl.pem",),
            dev_ca_directory=pki,
        )

    @classmethod
    def for_config(cls, path: Path) -> CertificatePaths:
        from gateway.config import GatewayConfig

        config = GatewayConfig.from_toml(path)
        return cls(
            gateway_certificates=(config.tls_cert, config.signing_cert),
            ca_bundle=config.ca_bundle,
            crls=config.crls,
            dev_ca_directory=config.dev_ca_directory,
        )


def report(paths: CertificatePaths, now: dt.datetime) -> list[CertificateRow]:
    trust = TrustStore(paths.ca_bundle, paths.crls, clock=lambda: now)

    certificates: list[tuple[str, x509.Certificate]] = []
    for path in paths.gateway_certificates:
        if path.exists():
            certificates += [
                ("gateway", c)
                for c in x509.load_pem_x509_certificates(path.read_bytes())
            ]
    certificates += [("trusted_ca", c) for c in trust.ca_certificates]
    if paths.dev_ca_directory is not None:
        dev_ca = DevelopmentCA(paths.dev_ca_directory)
        certificates += [("issued", c) for c in dev_ca.issued()]

    return build_rows(certificates, trust, now)


_COLUMNS: Sequence[tuple[str, str]] = (
    ("LEVEL", "level"),
    ("DAYS", "days_left"),
    ("NOT AFTER (UTC)", "not_after"),
    ("PURPOSE", "purpose"),
    ("ROLE", "role"),
    ("ORGANISATION", "organisation"),
    ("REVOCATION", "revocation"),
    ("SOURCE", "sources"),
    ("SERIAL", "serial_number"),
)


def render_text(rows: Sequence[CertificateRow]) -> str:
    table = [[header for header, _ in _COLUMNS]]
    for row in rows:
        values = asdict(row)
        values["not_after"] = values["not_after"][:16].replace("T", " ")
        table.append([str(values[field]) for _, field in _COLUMNS])

    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True))
        for line in table
    ]

    counts = {level: sum(r.level == level for r in rows) for level in _LEVELS}
    summary = ", ".join(f"{n} {level}" for level, n in counts.items() if n)
    lines.append("")
    lines.append(f"{len(rows)} certificates" + (f": {summary}" if summary else ""))
    return "\n".join(line.rstrip() for line in lines) + "\n"


_LEVELS = (
    "revoked",
    "expired",
    "within_3_days",
    "within_14_days",
    "within_30_days",
    "ok",
)


def render_json(rows: Sequence[CertificateRow]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False) + "\n"


def _certs(args: argparse.Namespace) -> int:
    if args.config:
        paths = CertificatePaths.for_config(Path(args.config))
    elif args.state:
        paths = CertificatePaths.for_state(Path(args.state))
    else:
        raise SystemExit("give --state DIR, or --config FILE")

    rows = report(paths, dt.datetime.now(dt.UTC))

    sys.stdout.write(render_json(rows) if args.json else render_text(rows))
    return 0


def add_certs_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``ykt certs`` to the ``ykt`` command's subparsers."""
    certs = subparsers.add_parser(
        "certs", help="certificates, expiry and revocation, for security staff"
    )
    certs.add_argument("--state", help="the gateway's state folder (development)")
    certs.add_argument("--config", help="the gateway's TOML configuration")
    certs.add_argument("--json", action="store_true", help="JSON instead of a table")
    certs.set_defaults(func=_certs)
    parser: argparse.ArgumentParser = certs
    return parser


__all__ = [
    "CertificatePaths",
    "CertificateRow",
    "add_certs_command",
    "build_rows",
    "render_json",
    "render_text",
    "report",
    "warning_level",
]
