"""Fuzz target: the acknowledgement decoder
(``connectors.file_protocol.decode_ack``). The whole input is the ``.ack``
file's bytes.

The documented error is ``ValueError``. What it decodes must be exactly
what it was given: the two lines re-encoded give the input back, and the
digest is 64 lower-case hex characters. The target asserts that, so a
decoder that lets extra bytes through is a finding too. (A name ending in
``.sig`` or ``.tmp`` decodes; ``connectors.file_gateway`` refuses it because
it names no file of the gateway's, so that is not asserted here.)
"""

from __future__ import annotations

import re

from connectors.file_protocol import decode_ack
from fuzz.targets._harness import fuzz_main

EXPECTED: tuple[type[BaseException], ...] = (ValueError,)

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def parse(data: bytes) -> tuple[str, str]:
    name, digest = decode_ack(data)

    assert _HEX_DIGEST.fullmatch(digest), "decode_ack returned a malformed digest"
    assert data == f"{name}\n{digest}\n".encode("ascii"), "decoding is not exact"
    return name, digest


def test_one_input(data: bytes) -> None:
    try:
        parse(data)
    except EXPECTED:
        return


def main() -> None:
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
