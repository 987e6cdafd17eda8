"""Fuzz target: the fixed-width result file reader
(``connectors.fixed_width.load_results``), as the gateway reads what an
agent bank wrote. The whole input is the file's bytes.

The documented error is ``FixedWidthFormatError``.
"""

from __future__ import annotations

import io

from connectors.fixed_width import FixedWidthFormatError, ResultFileHeader, load_results
from fuzz.targets._harness import fuzz_main
from ykt.v1 import exchange_pb2

EXPECTED: tuple[type[BaseException], ...] = (FixedWidthFormatError,)


def parse(data: bytes) -> tuple[ResultFileHeader, list[exchange_pb2.Result]]:
    return load_results(io.BytesIO(data))


def test_one_input(data: bytes) -> None:
    try:
        parse(data)
    except EXPECTED:
        return


def main() -> None:
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
