"""Fuzz target: the pain.001.001.09 reader (``connectors.iso20022.read_pain001``),
as an agent bank (the simulator) reads the gateway's credit transfers. The
whole input is the XML file's bytes.

The documented error is ``Iso20022FormatError``.
"""

from __future__ import annotations

import io

from connectors.iso20022 import Iso20022FormatError, Pain001Contents, read_pain001
from fuzz.targets._harness import fuzz_main

EXPECTED: tuple[type[BaseException], ...] = (Iso20022FormatError,)


def parse(data: bytes) -> Pain001Contents:
    return read_pain001(io.BytesIO(data))


def test_one_input(data: bytes) -> None:
    try:
        parse(data)
    except EXPECTED:
        return


def main() -> None:
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
