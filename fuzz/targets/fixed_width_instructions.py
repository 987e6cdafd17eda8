"""Fuzz target: the fixed-width instruction file reader
(``connectors.fixed_width.load_instruction_set``), as an agent bank reads
what the gateway wrote. The whole input is the file's bytes.

The documented error is ``FixedWidthFormatError``.
"""

from __future__ import annotations

import io

from connectors.fixed_width import FixedWidthFormatError, load_instruction_set
from fuzz.targets._harness import fuzz_main
from ykt.v1 import exchange_pb2

EXPECTED: tuple[type[BaseException], ...] = (FixedWidthFormatError,)


def parse(data: bytes) -> exchange_pb2.InstructionSet:
    return load_instruction_set(io.BytesIO(data))


def test_one_input(data: bytes) -> None:
    try:
        parse(data)
    except EXPECTED:
        return


def main() -> None:
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
