"""Fuzz target: the pain.002.001.10 status report reader
(``connectors.iso20022.read_pain002``), as the gateway reads what an agent
bank reports. The whole input is the XML file's bytes.

The reader maps EndToEndIds back through an index of what the gateway sent;
the target's index holds the fictional ids ``E2E-1`` to ``E2E-3``, which the
seeds use, so mutated seeds reach transaction parsing.

The documented error is ``Iso20022FormatError``.
"""

from __future__ import annotations

import io

from connectors.iso20022 import Iso20022FormatError, StatusReport, read_pain002
from fuzz.targets._harness import fuzz_main

EXPECTED: tuple[type[BaseException], ...] = (Iso20022FormatError,)

END_TO_END_IDS = {f"E2E-{n}": f"batch-fuzz.r{n}" for n in range(1, 4)}


def parse(data: bytes) -> StatusReport:
    return read_pain002(io.BytesIO(data), end_to_end_ids=END_TO_END_IDS)


def test_one_input(data: bytes) -> None:
    try:
        parse(data)
    except EXPECTED:
        return


def main() -> None:
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
