"""A development certificate authority, kept in a folder.

This CA exists so that one command can run the whole flow on one machine. It
issues TLS and signing certificates for every role, signs certificate requests
(CSRs) made on the client's own machine, revokes certificates and writes the
CRL the gateway checks.

Threats and invariants:
- The CA key sits unencrypted on disk (mode 0600). That is acceptable only for
  development, and every start says so in the log. Production gateways use an
  external CA bundle and CRL instead (see ``keys.trust``).
- The identity in an issued certificate comes from the CA operator's command,
  never from the CSR: a requester cannot name itself into another role or
  organisation.
- ``dev_generate_credentials`` makes a key pair on behalf of someone else. A
  real department or bank keeps its private key on its own machine and sends a
  CSR; the generator is a development convenience and logs that it is.
- Serial numbers are random 159-bit integers (RFC 5280 allows 20 octets).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keys.identity import DOCUMENT_SIGNING, Identity, Purpose, Role

_logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

CA_DAYS = 3650
LEAF_DAYS = 365
CRL_DAYS = 7


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def fingerprint(cert: x509.Certificate) -> str:
    """The key id used in envelope headers: SHA-256 over the certificate DER."""
    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class Credentials:
    """A TLS certificate and key, and a signing certificate and key if any."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    signing_cert: x509.Certificate | None
    signing_key: ec.EllipticCurvePrivateKey | None


@dataclass(frozen=True)
class Revocation:
    serial: int
    revoked_at: dt.datetime


class DevelopmentCA:
    """The CA folder: ``ca.pem``, ``ca-key.pem``, ``issued/``, ``crl.pem``."""

    def __init__(self, directory: Path, *, clock: Clock = utcnow) -> None:
        self.directory = directory
        self._clock = clock
        self.cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        loaded = serialization.load_pem_private_key(
            (directory / "ca-key.pem").read_bytes(), password=None
        )
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise TypeError("the development CA key must be an EC key")
        self._key = loaded

    def cert_pem_bytes(self) -> bytes:
        return cert_pem(self.cert)

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def crl_path(self) -> Path:
        return self.directory / "crl.pem"

    @classmethod
    def open_or_create(
        cls, directory: Path, *, name: str = "ykt development CA", clock: Clock = utcnow
    ) -> DevelopmentCA:
        if not (directory / "ca.pem").exists():
            cls._create(directory, name, clock())
        _logger.warning(
            "using the DEVELOPMENT CA; its key is unencrypted on disk",
            extra={"ca_dir": str(directory)},
        )
        ca = cls(directory, clock=clock)
        if not ca.crl_path.exists():
            ca.write_crl()
        return ca

    @staticmethod
    def _create(directory: Path, name: str, now: dt.datetime) -> None:
        key = new_private_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        (directory / "issued").mkdir(parents=True, exist_ok=True)
        write_private(directory / "ca-key.pem", key_pem(key))
        (directory / "ca.pem").write_bytes(cert_pem(cert))
        (directory / "revoked.json").write_text("[]\n")

    # -- issuing -------------------------------------------------------------

    def issue(
        self,
        identity: Identity,
        public_key: ec.EllipticCurvePublicKey,
        purpose: Purpose,
        *,
        server_names: Sequence[str] = (),
        days: int = LEAF_DAYS,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> x509.Certificate:
        """Issue a certificate for ``identity``; its name comes from us, not a CSR."""
        now = self._clock()
        start = not_before or now - dt.timedelta(minutes=5)
        end = not_after or now + dt.timedelta(days=days)
        cn = f"{identity.role.value} {identity.org}"
        if purpose is Purpose.SIGNING:
            cn += " signing"
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri)]
        for server_name in server_names:
            try:
                names.append(x509.IPAddress(ip_address(server_name)))
            except ValueError:
                names.append(x509.DNSName(server_name))
        if purpose is Purpose.SIGNING:
            usages = [DOCUMENT_SIGNING]
        elif server_names:
            usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        else:
            usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(_leaf_key_usage(purpose), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self._key.public_key()
                ),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        issued = self.directory / "issued" / f"{cert.serial_number:040x}.pem"
        issued.write_bytes(cert_pem(cert))
        _logger.info(
            "issued certificate",
            extra={"serial": f"{cert.serial_number:x}", "purpose": purpose.value},
        )
        return cert

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest,
        identity: Identity,
        purpose: Purpose,
        *,
        days: int = LEAF_DAYS,
    ) -> x509.Certificate:
        """Certify the key in a CSR. The CSR's own names are ignored."""
        if not csr.is_signature_valid:
            raise ValueError("the CSR's self-signature does not verify")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise ValueError("only EC P-256 keys are accepted")
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise ValueError("only EC P-256 keys are accepted")
        return self.issue(identity, public_key, purpose, days=days)

    def dev_generate_credentials(
        self,
        identity: Identity,
        *,
        server_names: Sequence[str] = (),
        days: int = LEAF_DAYS,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> Credentials:
        """DEVELOPMENT ONLY: make key pairs on behalf of someone else.

        A real party generates its keys itself and sends CSRs.
        """
        _logger.warning(
            "generating private keys on behalf of a client: development only",
            extra={"role": identity.role.value, "org": identity.org},
        )
        key = new_private_key()
        cert = self.issue(
            identity,
            key.public_key(),
            Purpose.TLS,
            server_names=server_names,
            days=days,
            not_before=not_before,
            not_after=not_after,
        )
        signing_cert = signing_key = None
        if identity.role.signs:
            signing_key = new_private_key()
            signing_cert = self.issue(
                identity,
                signing_key.public_key(),
                Purpose.SIGNING,
                days=days,
                not_before=not_before,
                not_after=not_after,
            )
        return Credentials(cert, key, signing_cert, signing_key)

    # -- revocation ----------------------------------------------------------

    def revocations(self) -> list[Revocation]:
        entries = json.loads((self.directory / "revoked.json").read_text())
        return [
            Revocation(int(e["serial"], 16), dt.datetime.fromisoformat(e["revoked_at"]))
            for e in entries
        ]

    def revoke(self, serial: int) -> None:
        """Revoke a certificate and rewrite the CRL at once."""
        entries = json.loads((self.directory / "revoked.json").read_text())
        if any(int(e["serial"], 16) == serial for e in entries):
            return
        entries.append(
            {"serial": f"{serial:x}", "revoked_at": self._clock().isoformat()}
        )
        (self.directory / "revoked.json").write_text(
            json.dumps(entries, indent=1) + "\n"
        )
        _logger.warning("revoked certificate", extra={"serial": f"{serial:x}"})
        self.write_crl()

    def write_crl(
        self, *, days: int = CRL_DAYS, next_update: dt.datetime | None = None
    ) -> x509.CertificateRevocationList:
        now = self._clock()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(next_update or now + dt.timedelta(days=days))
        )
        for revocation in self.revocations():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(revocation.serial)
                .revocation_date(revocation.revoked_at)
                .build()
            )
        crl = builder.sign(self._key, hashes.SHA256())
        tmp = self.crl_path.with_suffix(".tmp")
        tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        tmp.replace(self.crl_path)
        return crl

    def issued(self) -> list[x509.Certificate]:
        return [
            x509.load_pem_x509_certificate(path.read_bytes())
            for path in sorted((self.directory / "issued").glob("*.pem"))
        ]


def write_credentials(
    credentials: Credentials, ca_cert: x509.Certificate, out: Path
) -> None:
    """Write cert.pem, key.pem and ca.pem, plus signing.pem and signing-key.pem."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "cert.pem").write_bytes(cert_pem(credentials.cert))
    write_private(out / "key.pem", key_pem(credentials.key))
    (out / "ca.pem").write_bytes(cert_pem(ca_cert))
    if credentials.signing_cert is not None and credentials.signing_key is not None:
        (out / "signing.pem").write_bytes(cert_pem(credentials.signing_cert))
        write_private(out / "signing-key.pem", key_pem(credentials.signing_key))


def _leaf_key_usage(purpose: Purpose) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=purpose is Purpose.SIGNING,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=purpose is Purpose.TLS,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


__all__ = [
    "Credentials",
    "DevelopmentCA",
    "Identity",
    "Purpose",
    "Role",
    "cert_pem",
    "fingerprint",
    "key_pem",
    "write_credentials",
]
