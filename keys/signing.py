"""Signing keys and the signature suites they use.

Invariants:
- A key's algorithm is fixed by the key itself: the suite is chosen from the
  public key's type and curve, never from anything a message says. There is no
  "alg" field to downgrade.
- Suites are pluggable by key type, so that a national-standard suite
  (SM2 with SM3) can be registered later without changing the envelope.
- Signing keys are separate from TLS keys; ``keys.identity.purpose_of`` tells
  their certificates apart.
- ``verify`` raises ``cryptography.exceptions.InvalidSignature``; it never
  returns a boolean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)

from keys.ca import fingerprint
from keys.identity import Identity


class UnsupportedKeyError(Exception):
    """No signature suite is registered for this kind of key."""


class SignatureSuite(Protocol):
    name: str

    def sign(self, key: PrivateKeyTypes, data: bytes) -> bytes: ...

    def verify(
        self, key: CertificatePublicKeyTypes, signature: bytes, data: bytes
    ) -> None: ...


class EcdsaP256Sha256:
    name = "ecdsa-p256-sha256"

    def sign(self, key: PrivateKeyTypes, data: bytes) -> bytes:
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise UnsupportedKeyError("key is not an EC key")
        return key.sign(data, ec.ECDSA(hashes.SHA256()))

    def verify(
        self, key: CertificatePublicKeyTypes, signature: bytes, data: bytes
    ) -> None:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise UnsupportedKeyError("key is not an EC key")
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))


class Ed25519Suite:
    name = "ed25519"

    def sign(self, key: PrivateKeyTypes, data: bytes) -> bytes:
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise UnsupportedKeyError("key is not an Ed25519 key")
        return key.sign(data)

    def verify(
        self, key: CertificatePublicKeyTypes, signature: bytes, data: bytes
    ) -> None:
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise UnsupportedKeyError("key is not an Ed25519 key")
        key.verify(signature, data)


def suite_for(key: CertificatePublicKeyTypes | PrivateKeyTypes) -> SignatureSuite:
    """The one suite a key may be used with."""
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if isinstance(key.curve, ec.SECP256R1):
            return EcdsaP256Sha256()
        raise UnsupportedKeyError("only the P-256 curve is accepted")
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return Ed25519Suite()
    # TODO: register an SM2/SM3 suite here when a national-standard signing
    # key is required; the envelope format does not change.
    raise UnsupportedKeyError("no signature suite for this key type")


@dataclass(frozen=True)
class Signer:
    """A signing certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKeyTypes

    @property
    def key_id(self) -> str:
        return fingerprint(self.cert)

    @property
    def identity(self) -> Identity:
        return Identity.from_certificate(self.cert)

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def sign(self, data: bytes) -> bytes:
        return suite_for(self.key).sign(self.key, data)

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> Signer:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return cls(cert, key)
