"""Signed envelopes: seal a payload once, open it only after verifying it.

The envelope carries the exact bytes that were signed. The signature covers
the pre-authentication encoding (PAE) of payload type and payload bytes, so a
signature over one (type, bytes) pair can never be presented for another.

Opening an envelope, in order:
  1. The payload type is the one the receiver expects (no type swapping).
  2. The signing certificate chains to a trusted CA, is not revoked or
     expired, has the document-signing purpose and names one identity.
  3. The signature verifies over PAE(type, payload) with the suite fixed by
     the certificate's key.
  4. Only now are the payload bytes parsed.
  5. The header binds the payload: its key id is the certificate's
     fingerprint, its sender is the certificate's organisation, its audience
     is us, and now lies inside its validity window.

Threats answered: tampering (3), substitution of a differently typed payload
(1, PAE), a signer using a TLS key or a revoked or expired key (2), content
replayed to another receiver (5, audience), and old envelopes replayed after
their window (5). Replays inside the window are caught by the stores, which
key batches and sets by id and content digest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from google.protobuf.message import DecodeError, Message

from gateway.errors import EnvelopeError, ExpiredEnvelopeError, UntrustedSignerError
from keys.ca import fingerprint
from keys.identity import Identity
from keys.signing import Signer, UnsupportedKeyError, suite_for
from keys.trust import TrustError, TrustStore
from ykt.v1 import envelope_pb2

PAE_PREFIX = b"YKTv1"

# How far a sender's clock may run ahead of ours.
CLOCK_SKEW = dt.timedelta(minutes=5)
# The longest validity window a sender may declare.
MAX_VALIDITY = dt.timedelta(days=7)
DEFAULT_VALIDITY = dt.timedelta(hours=24)

Clock = Callable[[], dt.datetime]


M = TypeVar("M", bound=Message)


def pae(payload_type: str, payload: bytes) -> bytes:
    """The unambiguous encoding that is signed: prefix, lengths, type, bytes."""
    kind = payload_type.encode("utf-8")
    return b" ".join(
        [PAE_PREFIX, str(len(kind)).encode(), kind, str(len(payload)).encode(), payload]
    )


def payload_type_of(message: Message) -> str:
    return message.DESCRIPTOR.full_name


def seal(
    signer: Signer,
    message: Message,
    *,
    audience: str,
    subject_id: str,
    now: dt.datetime,
    validity: dt.timedelta = DEFAULT_VALIDITY,
) -> envelope_pb2.SignedEnvelope:
    """Fill the message's header, serialise it once and sign those bytes."""
    header: envelope_pb2.Header = message.header  # type: ignore[attr-defined]
    header.sender = signer.identity.org
    header.audience = audience
    header.subject_id = subject_id
    header.created_at.FromDatetime(now)
    header.expires_at.FromDatetime(now + validity)
    header.key_id = signer.key_id

    payload = message.SerializeToString(deterministic=True)
    kind = payload_type_of(message)
    return envelope_pb2.SignedEnvelope(
        payload_type=kind,
        payload=payload,
        signature=signer.sign(pae(kind, payload)),
        signer_certificate=signer.cert_der,
    )


@dataclass(frozen=True)
class Opened(Generic[M]):
    """A verified envelope: who signed it, the exact bytes, the parsed message."""

    signer: Identity
    key_id: str
    payload: bytes
    message: M


def verify_signed(
    envelope: envelope_pb2.SignedEnvelope,
    payload_type: str,
    data: bytes,
    *,
    trust: TrustStore,
    what: str = "envelope",
) -> tuple[Identity, x509.Certificate]:
    """Steps 1-3: the type, the signer's certificate, the signature over
    PAE(type, ``data``). ``data`` is the envelope's own payload, or the file
    a detached signature covers. Returns the signer and its certificate."""
    # 1. The payload type is the one we expect.
    if envelope.payload_type != payload_type:
        raise EnvelopeError(f"payload type must be {payload_type}")

    # 2. The signer's certificate is trusted for signing.
    try:
        cert = x509.load_der_x509_certificate(envelope.signer_certificate)
    except ValueError as exc:
        raise EnvelopeError("signer certificate is malformed") from exc
    try:
        identity = trust.verify_signer(cert)
    except TrustError as exc:
        raise UntrustedSignerError(str(exc)) from exc

    # 3. The signature verifies with the suite the key fixes.
    public_key = cert.public_key()
    try:
        suite_for(public_key).verify(
            public_key, envelope.signature, pae(payload_type, data)
        )
    except (InvalidSignature, UnsupportedKeyError) as exc:
        raise EnvelopeError(f"{what} signature does not verify") from exc
    return identity, cert


def open_envelope(
    envelope: envelope_pb2.SignedEnvelope,
    message_type: type[M],
    *,
    trust: TrustStore,
    audience: str,
    now: dt.datetime,
) -> Opened[M]:
    """Verify, then parse. Raises a ``GatewayError`` subclass on any failure."""
    # 1-3. Type, signer, signature.
    identity, cert = verify_signed(
        envelope, message_type.DESCRIPTOR.full_name, envelope.payload, trust=trust
    )

    # 4. Parse only the verified bytes.
    message = message_type()
    try:
        message.ParseFromString(envelope.payload)
    except (DecodeError, RecursionError) as exc:
        raise EnvelopeError("payload does not parse") from exc

    # 5. The header binds key, sender, audience and validity window.
    header: envelope_pb2.Header = message.header  # type: ignore[attr-defined]
    key_id = fingerprint(cert)
    if header.key_id != key_id:
        raise EnvelopeError("header key id does not name the signing certificate")
    if header.sender != identity.org:
        raise EnvelopeError("header sender is not the signer's organisation")
    if header.audience != audience:
        raise EnvelopeError("envelope is addressed to another receiver")
    if not header.subject_id:
        raise EnvelopeError("header lacks a subject id")
    try:
        created = header.created_at.ToDatetime(tzinfo=dt.UTC)
        expires = header.expires_at.ToDatetime(tzinfo=dt.UTC)
    except (ValueError, OverflowError) as exc:
        # Seconds or nanos outside what a timestamp may hold.
        raise EnvelopeError("header validity window is not acceptable") from exc
    if expires - created > MAX_VALIDITY or expires <= created:
        raise EnvelopeError("header validity window is not acceptable")
    if created > now + CLOCK_SKEW:
        raise EnvelopeError("envelope was created in the future")
    if now >= expires:
        raise ExpiredEnvelopeError("envelope has expired")
    return Opened(identity, key_id, envelope.payload, message)
