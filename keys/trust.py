"""What the gateway trusts: CA certificates and their revocation lists.

Invariants and the threats they answer:
- Every CA in the bundle must have a CRL, and every CRL must verify against its
  CA. A CRL past its nextUpdate is *stale*, and a stale CRL means refusal, not
  acceptance: an attacker who blocks CRL distribution must not thereby make
  revoked certificates usable again.
- CRL files are re-read when they change on disk, so revocation takes effect
  without a restart. Lookups are served from the parsed, cached set.
- Signing certificates are verified as a chain with OpenSSL (pyOpenSSL), with
  CRL checking on, at the time the caller gives, and must carry the
  document-signing purpose. A TLS certificate is never accepted as a signer.
- Verification raises; it never returns a boolean a caller could forget.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPublicKeyTypes,
)
from OpenSSL import crypto

from keys.identity import Identity, IdentityError, Purpose, purpose_of

_logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


class TrustError(Exception):
    """A certificate cannot be trusted. The message is safe to show a client."""


class CertificateRevokedError(TrustError):
    pass


class StaleCrlError(TrustError):
    pass


class UntrustedCertificateError(TrustError):
    pass


@dataclass(frozen=True)
class _LoadedCrl:
    crl: x509.CertificateRevocationList
    revoked_serials: frozenset[int]


def load_pem_certificates(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


class TrustStore:
    """CA bundle plus CRLs, reloaded when the files change."""

    def __init__(
        self,
        ca_bundle: Path,
        crl_paths: Sequence[Path],
        *,
        clock: Clock,
    ) -> None:
        self._ca_bundle = ca_bundle
        self._crl_paths = list(crl_paths)
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[float, ...] = ()
        self._cas: list[x509.Certificate] = []
        self._crls: dict[bytes, _LoadedCrl] = {}
        self._reload_if_changed()

    # -- loading -------------------------------------------------------------

    def _file_stamp(self) -> tuple[float, ...]:
        paths = [self._ca_bundle, *self._crl_paths]
        return tuple(os.stat(p).st_mtime_ns if p.exists() else -1 for p in paths)

    def _reload_if_changed(self) -> None:
        stamp = self._file_stamp()
        with self._lock:
            if stamp == self._stamp:
                return
            cas = load_pem_certificates(self._ca_bundle)
            crls: dict[bytes, _LoadedCrl] = {}
            for path in self._crl_paths:
                if not path.exists():
                    _logger.error("CRL file is missing", extra={"crl": str(path)})
                    continue
                crl = x509.load_pem_x509_crl(path.read_bytes())
                issuer = _issuer_of(crl, cas)
                if issuer is None:
                    _logger.error(
                        "CRL is not signed by a trusted CA", extra={"crl": str(path)}
                    )
                    continue
                serials = frozenset(r.serial_number for r in crl)
                crls[issuer.subject.public_bytes()] = _LoadedCrl(crl, serials)
            self._cas, self._crls, self._stamp = cas, crls, stamp
            _logger.info(
                "trust store loaded", extra={"cas": len(cas), "crls": len(crls)}
            )

    @property
    def ca_certificates(self) -> list[x509.Certificate]:
        self._reload_if_changed()
        return list(self._cas)

    def ca_pem(self) -> bytes:
        return self._ca_bundle.read_bytes()

    def crls(self) -> list[x509.CertificateRevocationList]:
        self._reload_if_changed()
        return [loaded.crl for loaded in self._crls.values()]

    # -- checks --------------------------------------------------------------

    def check_not_revoked(self, cert: x509.Certificate) -> None:
        """Raise unless the issuer's CRL is fresh and does not list ``cert``."""
        self._reload_if_changed()
        loaded = self._crls.get(cert.issuer.public_bytes())
        if loaded is None:
            raise StaleCrlError("revocation status unknown: no CRL for the issuer")
        next_update = loaded.crl.next_update_utc
        if next_update is None or next_update <= self._clock():
            raise StaleCrlError("revocation status unknown: the CRL is stale")
        if cert.serial_number in loaded.revoked_serials:
            raise CertificateRevokedError("certificate is revoked")

    def verify_signer(self, cert: x509.Certificate) -> Identity:
        """Verify a signing certificate now; return the identity it names.

        1. The chain verifies to a trusted CA at the current time, with CRLs.
        2. The CRL is fresh and does not list the certificate.
        3. The certificate is for signing, not for TLS.
        4. It names exactly one identity.
        """
        self._reload_if_changed()
        store = crypto.X509Store()
        for ca in self._cas:
            store.add_cert(crypto.X509.from_cryptography(ca))
        for loaded in self._crls.values():
            store.add_crl(loaded.crl)
        store.set_flags(
            crypto.X509StoreFlags.CRL_CHECK | crypto.X509StoreFlags.X509_STRICT
        )
        store.set_time(self._clock())
        try:
            # OpenSSL refuses some certificates that cryptography parses (an
            # invalid string type in a name, say); anyone can send one.
            candidate = crypto.X509.from_cryptography(cert)
        except crypto.Error as exc:
            raise UntrustedCertificateError(
                "signing certificate does not verify"
            ) from exc
        context = crypto.X509StoreContext(store, candidate)
        try:
            context.verify_certificate()
        except crypto.X509StoreContextError as exc:
            self.check_not_revoked(cert)  # a precise reason where we have one
            raise UntrustedCertificateError(
                "signing certificate does not verify"
            ) from exc
        self.check_not_revoked(cert)
        try:
            if purpose_of(cert) is not Purpose.SIGNING:
                raise UntrustedCertificateError(
                    "certificate is not a signing certificate"
                )
            return Identity.from_certificate(cert)
        except IdentityError as exc:
            raise UntrustedCertificateError(str(exc)) from exc


def _issuer_of(
    crl: x509.CertificateRevocationList, cas: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    for ca in cas:
        if ca.subject != crl.issuer:
            continue
        public_key: CertificateIssuerPublicKeyTypes = ca.public_key()  # type: ignore[assignment]
        if crl.is_signature_valid(public_key):
            return ca
    return None
