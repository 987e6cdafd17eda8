"""One fuzz target per parser of untrusted input.

Every target module has:

  * ``EXPECTED``: the exception types the parser documents for bad input;
  * ``parse(data)``: feeds the bytes to the parser and returns what it read,
    raising one of ``EXPECTED`` for input it refuses;
  * ``test_one_input(data)``: ``parse`` with ``EXPECTED`` swallowed. Anything
    else escapes: that is a finding. atheris calls this function, and so does
    ``tests/test_fuzz_corpus.py`` for every file of ``fuzz/corpus/<target>/``;
  * ``main()``: the atheris entry point, importing atheris only there, so the
    test suite needs no atheris.

Invariant: a target never catches more than its parser documents. Catching
``Exception`` would hide exactly what fuzzing is for.
"""

from __future__ import annotations

# Target name -> module under fuzz.targets; the name is also the corpus folder.
TARGETS: tuple[str, ...] = (
    "department_file",
    "fixed_width_instructions",
    "fixed_width_results",
    "pain002",
    "pain001",
    "envelope",
    "ack",
)
