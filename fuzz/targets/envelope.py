"""Fuzz target: signed envelopes (``gateway.envelope.open_envelope``) and
detached file signatures (``connectors.exchange_files.verify_file_bytes``).

The target keeps a real development CA, trust store and department signer
in a temporary folder, all on a fixed clock (``NOW``), so a seed opens the
same way on every run. Input layout, by the first byte modulo 4:

  0. the rest is a serialised ``SignedEnvelope`` from the network. An empty
     ``signer_certificate`` is filled with the target's trusted one, so the
     fuzzer's signatures reach the signature check (DER of ECDSA).
  1. the rest is a payload; the target signs it, correctly typed, as its
     trusted signer would and opens it: parsing of verified bytes and the
     header checks.
  2. the rest is a payload message; the target sets the header's sender,
     audience and key id to what they must be (and a subject id if there
     is none), re-serialises and signs it: this reaches the validity-window
     checks with the fuzzer's timestamps.
  3. like 0, but as the detached signature of an exchange file over fixed
     bytes, through ``verify_file_bytes``.

The second byte chooses the payload type in modes 1 and 2. A message that
does not parse as ``SignedEnvelope`` (modes 0, 3) or as the payload type
(mode 2) is the network layer's refusal, before our code, and is expected.

The documented error is ``gateway.errors.GatewayError`` (every subclass).
DANGER: the CA's private key lies unencrypted in the temporary folder; it is
a throw-away key that nothing else trusts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message

from connectors.exchange_files import FIXED_WIDTH_INSTRUCTIONS, verify_file_bytes
from fuzz.targets._harness import fuzz_main, scratch_dir
from gateway.envelope import Opened, open_envelope, pae, payload_type_of
from gateway.errors import GatewayError
from keys.ca import DevelopmentCA
from keys.identity import Identity, Role
from keys.signing import Signer
from keys.trust import TrustStore
from ykt.v1 import batch_pb2, envelope_pb2, exchange_pb2

EXPECTED: tuple[type[BaseException], ...] = (GatewayError,)

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
AUDIENCE = "gateway"
SENDER = Identity(Role.DEPARTMENT, "500154-NYNC")
PAYLOAD_TYPES: tuple[type[Message], ...] = (
    batch_pb2.BatchManifest,
    exchange_pb2.ResultSet,
    exchange_pb2.InstructionSet,
)
FILE_BYTES = b"the bytes of an exchange file\r\n"


@dataclass(frozen=True)
class Keys:
    trust: TrustStore
    signer: Signer


_keys: list[Keys] = []


def keys() -> Keys:
    """The target's CA, trust store and signer, made once per process."""
    if not _keys:
        pki = scratch_dir() / "pki"
        ca = DevelopmentCA.open_or_create(pki, clock=lambda: NOW)
        credentials = ca.dev_generate_credentials(SENDER)
        assert credentials.signing_cert is not None
        assert credentials.signing_key is not None
        trust = TrustStore(ca.ca_path, [ca.crl_path], clock=lambda: NOW)
        _keys.append(
            Keys(trust, Signer(credentials.signing_cert, credentials.signing_key))
        )
    return _keys[0]


def signed(payload_type: str, payload: bytes) -> envelope_pb2.SignedEnvelope:
    signer = keys().signer
    return envelope_pb2.SignedEnvelope(
        payload_type=payload_type,
        payload=payload,
        signature=signer.sign(pae(payload_type, payload)),
        signer_certificate=signer.cert_der,
    )


def _from_network(raw: bytes) -> envelope_pb2.SignedEnvelope:
    envelope = envelope_pb2.SignedEnvelope()
    try:
        envelope.ParseFromString(raw)
    except (DecodeError, RecursionError) as exc:
        raise GatewayError("the envelope does not parse (network layer)") from exc
    if not envelope.signer_certificate:
        envelope.signer_certificate = keys().signer.cert_der
    return envelope


def _with_bound_header(message_type: type[Message], raw: bytes) -> bytes:
    message = message_type()
    try:
        message.ParseFromString(raw)
    except (DecodeError, RecursionError) as exc:
        raise GatewayError("the payload does not parse (fuzz set-up)") from exc
    header: envelope_pb2.Header = message.header  # type: ignore[attr-defined]
    header.sender = SENDER.org
    header.audience = AUDIENCE
    header.key_id = keys().signer.key_id
    if not header.subject_id:
        header.subject_id = "batch-fuzz"
    return message.SerializeToString()


def parse(data: bytes) -> Opened[Message] | Identity:
    if len(data) < 2:
        raise GatewayError("too short for a fuzz input")
    mode, message_type, rest = (
        data[0] % 4,
        PAYLOAD_TYPES[data[1] % len(PAYLOAD_TYPES)],
        data[2:],
    )
    trust = keys().trust

    if mode == 3:
        return verify_file_bytes(
            _from_network(rest),
            FILE_BYTES,
            payload_type=FIXED_WIDTH_INSTRUCTIONS,
            trust=trust,
        )

    if mode == 0:
        envelope = _from_network(rest)
    elif mode == 1:
        envelope = signed(payload_type_of(message_type()), rest)
    else:
        payload = _with_bound_header(message_type, rest)
        envelope = signed(payload_type_of(message_type()), payload)
    return open_envelope(
        envelope, message_type, trust=trust, audience=AUDIENCE, now=NOW
    )


def test_one_input(data: bytes) -> None:
    try:
        parse(data)
    except EXPECTED:
        return


def main() -> None:
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
