"""Who a certificate speaks for: a role and an organisation, in one URI SAN.

Invariants:
- A certificate names exactly one identity, as the URI SAN
  ``urn:ykt:<role>:<organisation>``. The gateway takes the caller's role from
  there and only from there: never from the subject CN, never from metadata.
- A transport (TLS) certificate and a signing certificate are told apart by
  their extended key usage. A signing certificate carries only
  document-signing (RFC 9336); a TLS certificate never carries it. A key of one
  purpose is never accepted for the other.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

URI_PREFIX = "urn:ykt:"

# id-kp-documentSigning, RFC 9336.
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")

_ORG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")


class Role(enum.StrEnum):
    DEPARTMENT = "department"
    BANK = "bank"
    FINANCE = "finance"
    UNIT = "unit"
    AUDITOR = "auditor"
    GATEWAY = "gateway"

    @property
    def signs(self) -> bool:
        """Whether this role signs content, and so needs a signing key."""
        return self in (Role.DEPARTMENT, Role.BANK, Role.GATEWAY)


class Purpose(enum.StrEnum):
    TLS = "tls"
    SIGNING = "signing"


class IdentityError(Exception):
    """A certificate does not name exactly one valid identity."""


@dataclass(frozen=True)
class Identity:
    role: Role
    org: str

    def __post_init__(self) -> None:
        if not _ORG_PATTERN.match(self.org):
            raise IdentityError("organisation code is malformed")

    @property
    def uri(self) -> str:
        return f"{URI_PREFIX}{self.role.value}:{self.org}"

    @classmethod
    def from_uri(cls, uri: str) -> Identity:
        if not uri.startswith(URI_PREFIX):
            raise IdentityError("URI SAN is not a ykt identity")
        role_text, sep, org = uri[len(URI_PREFIX) :].partition(":")
        if not sep:
            raise IdentityError("URI SAN lacks an organisation")
        try:
            role = Role(role_text)
        except ValueError as exc:
            raise IdentityError("URI SAN names an unknown role") from exc
        return cls(role, org)

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> Identity:
        """The one identity a certificate names; raises if not exactly one."""
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound as exc:
            raise IdentityError("certificate has no subject alternative name") from exc
        uris = [
            u for u in san.value.get_values_for_type(x509.UniformResourceIdentifier)
        ]
        ours = [u for u in uris if u.startswith(URI_PREFIX)]
        if len(ours) != 1:
            raise IdentityError("certificate must name exactly one ykt identity")
        return cls.from_uri(ours[0])


def purpose_of(cert: x509.Certificate) -> Purpose:
    """Whether a certificate is for TLS or for signing, from its EKU."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise IdentityError("certificate has no extended key usage") from exc
    usages = set(eku)
    if DOCUMENT_SIGNING in usages:
        if usages & {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}:
            raise IdentityError("certificate mixes signing and TLS purposes")
        return Purpose.SIGNING
    return Purpose.TLS
