"""TLS settings that must be in place before gRPC starts.

gRPC reads ``GRPC_SSL_CIPHER_SUITES`` once, when it first sets up TLS. The
suites are limited to ECDHE key exchange with AEAD ciphers (all our keys are
ECDSA P-256); TLS 1.2 is gRPC core's minimum version and TLS 1.3 suites are
fixed by BoringSSL.
"""

from __future__ import annotations

import os

STRONG_CIPHER_SUITES = ":".join(
    [
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ]
)


def restrict_cipher_suites() -> None:
    """Call before the first gRPC channel or server is created."""
    os.environ.setdefault("GRPC_SSL_CIPHER_SUITES", STRONG_CIPHER_SUITES)
