"""Write the golden envelope vectors to tests/vectors/envelopes/, once.

The vectors let an implementation in any language check itself against the
gateway's envelope rules (gateway/envelope.py): the PAE bytes, the signature
suites, and the refusals. Each vector is one JSON file holding an envelope,
the receiver it is opened as (expected payload type, audience, signer role,
trusted CA, CRLs and a fixed clock), and the expected verdict: "valid", or
"invalid" with the reason of the first check that refuses it.

Usage::

    .venv/bin/python scripts/gen_envelope_vectors.py            # first time
    .venv/bin/python scripts/gen_envelope_vectors.py --force    # replace all
    .venv/bin/python scripts/gen_envelope_vectors.py --out DIR  # elsewhere

Invariants:
- Generated once and checked in. ECDSA signatures are randomised and every
  run makes new keys, so a second run gives different bytes. The script
  therefore refuses to write into a folder that already holds anything,
  unless ``--force`` is given; ``--force`` deletes the old vectors and PKI
  first, and refuses to touch a folder holding files it did not write.
- Every vector is opened with the Python implementation before it is
  written; a vector whose Python verdict is not the intended one aborts the
  run, so the checked-in verdicts are the gateway's own.
- The certificates and the CRL are valid from 2026-01-01 to 2046-01-01 and
  every vector names the instant it is to be verified at, so the vectors do
  not rot with the calendar.
- The private keys are written as ``*-key.TEST-ONLY.pem``. They are public by
  being checked in and sign nothing but these vectors; no gateway trusts
  this CA. They are there so another implementation can reproduce the
  deterministic Ed25519 signature byte for byte.
- All people, accounts and amounts are fictional (tests/fakes.py).

Reasons, in the order the receiver's checks run: ``payload-type``, ``signer``,
``signature``, ``payload``, ``header``, ``expired``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import random
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.types import (  # noqa: E402
    CertificateIssuerPrivateKeyTypes,
)
from cryptography.hazmat.primitives.asymmetric.utils import (  # noqa: E402
    decode_dss_signature,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402
from google.protobuf.message import Message  # noqa: E402

from gateway.envelope import open_envelope, pae, seal  # noqa: E402
from gateway.errors import (  # noqa: E402
    EnvelopeError,
    ExpiredEnvelopeError,
    UntrustedSignerError,
)
from keys.ca import fingerprint  # noqa: E402
from keys.identity import DOCUMENT_SIGNING, Identity, Role  # noqa: E402
from keys.signing import Signer, UnsupportedKeyError, suite_for  # noqa: E402
from keys.trust import TrustStore  # noqa: E402
from tests.fakes import make_card, make_id, make_name  # noqa: E402
from ykt.v1 import envelope_pb2, exchange_pb2  # noqa: E402

DEFAULT_OUT = ROOT / "tests" / "vectors" / "envelopes"

NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2046, 1, 1, tzinfo=dt.UTC)
SIGNED_AT = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
VERIFY_AT = SIGNED_AT + dt.timedelta(minutes=30)
AFTER_EXPIRY = SIGNED_AT + dt.timedelta(days=2)

CA_NAME = "ykt envelope vectors CA (TEST ONLY)"
BANK = "CQRCB"
OTHER_BANK = "CQTESTB"
GATEWAY = Identity(Role.GATEWAY, "gateway")
BANK_IDENTITY = Identity(Role.BANK, BANK)

REASONS = ("payload-type", "signer", "signature", "payload", "header", "expired")

# What --force may delete: the files and folders this script writes.
_OWN_NAMES = {"README.md", "pki"}


# -- the verdict, as the Python implementation gives it ----------------------


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str | None = None
    signer: str | None = None
    subject_id: str | None = None
    key_id: str | None = None


def _reason_of(error: Exception) -> str:
    if isinstance(error, UntrustedSignerError):
        return "signer"
    if isinstance(error, ExpiredEnvelopeError):
        return "expired"
    if not isinstance(error, EnvelopeError):
        raise error
    message = str(error)
    if message.startswith("payload type"):
        return "payload-type"
    if "signature" in message:
        return "signature"
    if "does not parse" in message:
        return "payload"
    return "header"


def python_verdict(vector: dict[str, Any], base: Path) -> Verdict:
    """Open a vector's envelope with gateway.envelope, as its receiver would."""
    receiver = vector["receiver"]
    verify_at = dt.datetime.fromisoformat(receiver["verify_at"])
    trust = TrustStore(
        base / receiver["trusted_ca"],
        [base / crl for crl in receiver["crls"]],
        clock=lambda: verify_at,
    )
    kinds: dict[str, type[Message]] = {
        "ykt.v1.AccountCheckSet": exchange_pb2.AccountCheckSet,
        "ykt.v1.InstructionSet": exchange_pb2.InstructionSet,
        "ykt.v1.ResultSet": exchange_pb2.ResultSet,
    }

    try:
        opened = open_envelope(
            envelope_of(vector),
            kinds[receiver["payload_type"]],
            trust=trust,
            audience=receiver["audience"],
            now=verify_at,
        )
    except (EnvelopeError, ExpiredEnvelopeError, UntrustedSignerError) as error:
        return Verdict("invalid", _reason_of(error))

    if opened.signer.role.value != receiver["signer_role"]:
        return Verdict("invalid", "signer")
    header = opened.message.header  # type: ignore[attr-defined]
    return Verdict(
        "valid",
        signer=opened.signer.uri,
        subject_id=header.subject_id,
        key_id=opened.key_id,
    )


def envelope_of(vector: dict[str, Any]) -> envelope_pb2.SignedEnvelope:
    fields = vector["envelope"]
    return envelope_pb2.SignedEnvelope(
        payload_type=fields["payload_type"],
        payload=base64.b64decode(fields["payload_b64"]),
        signature=base64.b64decode(fields["signature_b64"]),
        signer_certificate=base64.b64decode(fields["signer_certificate_b64"]),
    )


def suite_accepts(vector: dict[str, Any]) -> bool:
    """Whether keys.signing alone accepts the signature over the PAE."""
    envelope = envelope_of(vector)
    key = x509.load_der_x509_certificate(envelope.signer_certificate).public_key()
    try:
        suite_for(key).verify(
            key, envelope.signature, pae(envelope.payload_type, envelope.payload)
        )
    except (InvalidSignature, UnsupportedKeyError):
        return False
    return True


# -- a fixed PKI -------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    name: str
    cert: x509.Certificate
    key: Any


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, cert_sign: bool, tls: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=not cert_sign and not tls,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=tls,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(file_name: str) -> Issued:
    """A self-signed P-256 CA. Two of them share one name on purpose."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME))
        .issuer_name(_name(CA_NAME))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True, tls=False), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(file_name, cert, key)


def issue(
    ca: Issued,
    file_name: str,
    identity: Identity,
    key: Any,
    *,
    tls: bool = False,
) -> Issued:
    """A leaf certificate in the gateway's profile: signing or TLS."""
    usages = (
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        if tls
        else [DOCUMENT_SIGNING]
    )
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri)]
    if tls:
        names.append(x509.DNSName("localhost"))
    suffix = " tls" if tls else " signing"
    ca_key: CertificateIssuerPrivateKeyTypes = ca.key
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{identity.role.value} {identity.org}{suffix}"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(_key_usage(cert_sign=False, tls=tls), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(file_name, cert, key)


def make_crl(ca: Issued, revoked: Sequence[Issued]) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(NOT_BEFORE)
        .next_update(NOT_AFTER)
    )
    for issued in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(issued.cert.serial_number)
            .revocation_date(NOT_BEFORE + dt.timedelta(days=30))
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256())


@dataclass(frozen=True)
class Pki:
    ca: Issued
    impostor_ca: Issued
    gateway: Issued
    gateway_tls: Issued
    gateway_p384: Issued
    gateway_revoked: Issued
    gateway_by_impostor: Issued
    bank_ed25519: Issued
    crl: x509.CertificateRevocationList

    def all(self) -> list[Issued]:
        return [
            self.ca,
            self.impostor_ca,
            self.gateway,
            self.gateway_tls,
            self.gateway_p384,
            self.gateway_revoked,
            self.gateway_by_impostor,
            self.bank_ed25519,
        ]


def make_pki() -> Pki:
    ca = make_ca("ca")
    impostor = make_ca("impostor-ca-same-name")
    p256 = ec.SECP256R1()
    revoked = issue(
        ca, "gateway-signing-revoked", GATEWAY, ec.generate_private_key(p256)
    )
    return Pki(
        ca=ca,
        impostor_ca=impostor,
        gateway=issue(ca, "gateway-signing", GATEWAY, ec.generate_private_key(p256)),
        gateway_tls=issue(
            ca, "gateway-tls", GATEWAY, ec.generate_private_key(p256), tls=True
        ),
        gateway_p384=issue(
            ca, "gateway-signing-p384", GATEWAY, ec.generate_private_key(ec.SECP384R1())
        ),
        gateway_revoked=revoked,
        gateway_by_impostor=issue(
            impostor, "gateway-signing-impostor", GATEWAY, ec.generate_private_key(p256)
        ),
        bank_ed25519=issue(
            ca,
            "bank-cqrcb-signing-ed25519",
            BANK_IDENTITY,
            ed25519.Ed25519PrivateKey.generate(),
        ),
        crl=make_crl(ca, [revoked]),
    )


def write_pki(pki: Pki, out: Path) -> None:
    folder = out / "pki"
    folder.mkdir(parents=True)
    for issued in pki.all():
        (folder / f"{issued.name}.pem").write_bytes(
            issued.cert.public_bytes(serialization.Encoding.PEM)
        )
        (folder / f"{issued.name}-key.TEST-ONLY.pem").write_bytes(
            issued.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    (folder / "crl.pem").write_bytes(pki.crl.public_bytes(serialization.Encoding.PEM))


# -- the payloads and envelopes ----------------------------------------------


class _Sha384Signer(Signer):
    """Signs with ECDSA and SHA-384, bypassing suite_for: for the P-384 vector."""

    def sign(self, data: bytes) -> bytes:
        assert isinstance(self.key, ec.EllipticCurvePrivateKey)
        return self.key.sign(data, ec.ECDSA(hashes.SHA384()))


def instruction_set() -> exchange_pb2.InstructionSet:
    rng = random.Random(20260601)  # noqa: S311 - repeatable fictional people
    message = exchange_pb2.InstructionSet(
        bank_code=BANK,
        policy_code="CQ-NY-001",
        policy_name="耕地地力保护补贴",
        period="2026",
    )
    for number, amount_fen in enumerate([12050, 350000, 1], start=1):
        message.instructions.add(
            instruction_id=f"rec-{number:04d}",
            payee_name=make_name(rng),
            account_number=make_card(rng),
            amount_fen=amount_fen,
        )
    return message


def account_check_set() -> exchange_pb2.AccountCheckSet:
    rng = random.Random(20260602)  # noqa: S311 - repeatable fictional people
    message = exchange_pb2.AccountCheckSet(bank_code=BANK)
    message.checks.add(
        check_id="rec-0001",
        holder_name=make_name(rng),
        holder_id_number=make_id(rng),
        account_number=make_card(rng),
    )
    return message


def result_set() -> exchange_pb2.ResultSet:
    message = exchange_pb2.ResultSet()
    for number, status in [
        (1, exchange_pb2.RESULT_STATUS_PAID),
        (2, exchange_pb2.RESULT_STATUS_FAILED),
    ]:
        result = message.results.add(
            instruction_id=f"rec-{number:04d}",
            status=status,
            reason_code=""
            if status == exchange_pb2.RESULT_STATUS_PAID
            else "ACCOUNT_FROZEN",
            bank_reference=f"{BANK}20260601{number:010d}",
        )
        result.completed_at.FromDatetime(SIGNED_AT - dt.timedelta(minutes=number))
    return message


def sealed(
    issued: Issued,
    message: Message,
    *,
    audience: str,
    subject_id: str,
    signer_type: type[Signer] = Signer,
) -> envelope_pb2.SignedEnvelope:
    return seal(
        signer_type(issued.cert, issued.key),
        message,
        audience=audience,
        subject_id=subject_id,
        now=SIGNED_AT,
    )


def raw_ecdsa_signature(der_signature: bytes) -> bytes:
    """The same ECDSA signature as r || s (IEEE P1363), which must be refused."""
    r, s = decode_dss_signature(der_signature)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    envelope: envelope_pb2.SignedEnvelope
    payload_type: str
    audience: str
    signer_role: str
    verdict: str
    reason: str | None = None
    verify_at: dt.datetime = VERIFY_AT
    signer_key: Issued | None = None


def cases(pki: Pki) -> list[Case]:
    instructions = sealed(
        pki.gateway, instruction_set(), audience=BANK, subject_id="b-0001.i0"
    )
    checks = sealed(
        pki.gateway, account_check_set(), audience=BANK, subject_id="b-0001.c0"
    )

    tampered = envelope_pb2.SignedEnvelope()
    tampered.CopyFrom(instructions)
    altered = exchange_pb2.InstructionSet.FromString(tampered.payload)
    altered.instructions[0].amount_fen += 100000
    tampered.payload = altered.SerializeToString(deterministic=True)

    relabelled = envelope_pb2.SignedEnvelope()
    relabelled.CopyFrom(checks)
    relabelled.payload_type = "ykt.v1.InstructionSet"

    p1363 = envelope_pb2.SignedEnvelope()
    p1363.CopyFrom(instructions)
    p1363.signature = raw_ecdsa_signature(instructions.signature)

    def gateway_sends(issued: Issued, **kwargs: Any) -> envelope_pb2.SignedEnvelope:
        return sealed(issued, instruction_set(), subject_id="b-0001.i0", **kwargs)

    inst, gw = "ykt.v1.InstructionSet", "gateway"
    return [
        Case(
            "valid-ecdsa-p256-instruction-set",
            "The gateway's ECDSA P-256 signing key signs an InstructionSet for "
            "the bank; the payee names are UTF-8, so len() counts bytes.",
            instructions,
            inst,
            BANK,
            gw,
            "valid",
        ),
        Case(
            "valid-ed25519-result-set",
            "A bank's Ed25519 signing key signs a ResultSet for the gateway. "
            "Ed25519 is deterministic: the TEST-ONLY key reproduces the signature.",
            sealed(
                pki.bank_ed25519,
                result_set(),
                audience=gw,
                subject_id="b-0001.i0.results",
            ),
            "ykt.v1.ResultSet",
            gw,
            "bank",
            "valid",
            signer_key=pki.bank_ed25519,
        ),
        Case(
            "invalid-tampered-payload",
            "The valid InstructionSet with one amount raised after signing.",
            tampered,
            inst,
            BANK,
            gw,
            "invalid",
            "signature",
        ),
        Case(
            "invalid-swapped-payload-type",
            "A signed AccountCheckSet relabelled as an InstructionSet: the type "
            "matches what the receiver expects, but PAE binds the signed type.",
            relabelled,
            inst,
            BANK,
            gw,
            "invalid",
            "signature",
        ),
        Case(
            "invalid-unexpected-payload-type",
            "A valid AccountCheckSet offered where an InstructionSet is expected.",
            checks,
            inst,
            BANK,
            gw,
            "invalid",
            "payload-type",
        ),
        Case(
            "invalid-signer-is-tls-key",
            "Signed with the gateway's TLS key and certificate (serverAuth and "
            "clientAuth, no document-signing).",
            gateway_sends(pki.gateway_tls, audience=BANK),
            inst,
            BANK,
            gw,
            "invalid",
            "signer",
        ),
        Case(
            "invalid-signer-from-impostor-ca",
            "Signed by a key certified by another CA that carries the trusted "
            "CA's exact name: names alone must not decide the issuer.",
            gateway_sends(pki.gateway_by_impostor, audience=BANK),
            inst,
            BANK,
            gw,
            "invalid",
            "signer",
        ),
        Case(
            "invalid-signer-revoked",
            "Signed by a gateway signing key whose serial the CRL lists.",
            gateway_sends(pki.gateway_revoked, audience=BANK),
            inst,
            BANK,
            gw,
            "invalid",
            "signer",
        ),
        Case(
            "invalid-unsupported-curve-p384",
            "Signed by a trusted document-signing key on P-384 (ECDSA, SHA-384): "
            "no suite is registered for that curve.",
            gateway_sends(pki.gateway_p384, audience=BANK, signer_type=_Sha384Signer),
            inst,
            BANK,
            gw,
            "invalid",
            "signature",
        ),
        Case(
            "invalid-ecdsa-signature-not-der",
            "The valid InstructionSet with its ECDSA signature as r||s (IEEE "
            "P1363) instead of DER.",
            p1363,
            inst,
            BANK,
            gw,
            "invalid",
            "signature",
        ),
        Case(
            "invalid-wrong-audience",
            "A valid InstructionSet addressed to another bank.",
            gateway_sends(pki.gateway, audience=OTHER_BANK),
            inst,
            BANK,
            gw,
            "invalid",
            "header",
        ),
        Case(
            "invalid-expired",
            "The valid InstructionSet, verified two days after it was signed "
            "(it was valid for 24 hours).",
            instructions,
            inst,
            BANK,
            gw,
            "invalid",
            "expired",
            verify_at=AFTER_EXPIRY,
        ),
    ]


def to_vector(case: Case, pki: Pki) -> dict[str, Any]:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    envelope = case.envelope
    expected: dict[str, Any] = {
        "verdict": case.verdict,
        "reason": case.reason,
        "pae_hex": pae(envelope.payload_type, envelope.payload).hex(),
        "deterministic_signature": case.signer_key is not None,
    }
    if case.verdict == "valid":
        cert = x509.load_der_x509_certificate(envelope.signer_certificate)
        header = _header_of(envelope)
        expected.update(
            signer=Identity.from_certificate(cert).uri,
            subject_id=header.subject_id,
            key_id=fingerprint(cert),
        )
    vector: dict[str, Any] = {
        "name": case.name,
        "description": case.description,
        "receiver": {
            "payload_type": case.payload_type,
            "audience": case.audience,
            "signer_role": case.signer_role,
            "trusted_ca": f"pki/{pki.ca.name}.pem",
            "crls": ["pki/crl.pem"],
            "verify_at": case.verify_at.isoformat().replace("+00:00", "Z"),
        },
        "envelope": {
            "payload_type": envelope.payload_type,
            "payload_b64": b64(envelope.payload),
            "signature_b64": b64(envelope.signature),
            "signer_certificate_b64": b64(envelope.signer_certificate),
        },
        "signed_envelope_b64": b64(envelope.SerializeToString(deterministic=True)),
        "expected": expected,
    }
    if case.signer_key is not None:
        vector["signer_key_test_only"] = f"pki/{case.signer_key.name}-key.TEST-ONLY.pem"
    return vector


def _header_of(envelope: envelope_pb2.SignedEnvelope) -> envelope_pb2.Header:
    kinds: dict[str, type[Message]] = {
        "ykt.v1.InstructionSet": exchange_pb2.InstructionSet,
        "ykt.v1.ResultSet": exchange_pb2.ResultSet,
        "ykt.v1.AccountCheckSet": exchange_pb2.AccountCheckSet,
    }
    message = kinds[envelope.payload_type].FromString(envelope.payload)
    header: envelope_pb2.Header = message.header  # type: ignore[attr-defined]
    return header


# -- writing -----------------------------------------------------------------


README = """\
# Golden envelope vectors

Written once by `scripts/gen_envelope_vectors.py` and checked in; see
`docs/interop.md` for the format. Each `*.json` is one envelope, the receiver
that opens it and the expected verdict. `pki/` holds the fixed test CA, a
second CA with the same name (the impostor), the signer certificates, the CRL
and their private keys as `*-key.TEST-ONLY.pem`: public test keys that sign
nothing but these vectors. Regenerate only with `--force`, on purpose: every
run makes new keys and new ECDSA signatures.
"""


def prepare(out: Path, *, force: bool) -> None:
    """Refuse to overwrite vectors unless forced; never delete foreign files."""
    if not out.exists() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        return
    if not force:
        raise SystemExit(
            f"{out} already holds vectors; they are generated once and checked in. "
            "Pass --force to replace them all (new keys, new signatures)."
        )
    foreign = [
        p.name
        for p in out.iterdir()
        if p.name not in _OWN_NAMES and not p.name.endswith(".json")
    ]
    if foreign:
        raise SystemExit(
            f"refusing --force: {out} holds files this script did not write"
        )
    shutil.rmtree(out)
    out.mkdir(parents=True)


def generate(out: Path, *, force: bool = False) -> list[dict[str, Any]]:
    prepare(out, force=force)
    pki = make_pki()
    write_pki(pki, out)
    (out / "README.md").write_text(README, encoding="utf-8")

    vectors = []
    for case in cases(pki):
        vector = to_vector(case, pki)
        _check_against_python(vector, out)
        (out / f"{case.name}.json").write_text(
            json.dumps(vector, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        vectors.append(vector)
    return vectors


def _check_against_python(vector: dict[str, Any], base: Path) -> None:
    expected = vector["expected"]
    actual = python_verdict(vector, base)
    if (actual.verdict, actual.reason) != (expected["verdict"], expected["reason"]):
        raise SystemExit(
            f"vector {vector['name']}: Python says {actual.verdict}/{actual.reason}, "
            f"intended {expected['verdict']}/{expected['reason']}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace existing vectors (new keys and signatures: review the diff)",
    )
    args = parser.parse_args(argv)
    vectors = generate(args.out, force=args.force)
    print(f"wrote {len(vectors)} vectors to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
