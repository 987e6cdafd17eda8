"""The atheris entry point shared by every target, and scratch space.

atheris is imported inside ``fuzz_main`` only: the targets' parsing functions
must stay importable by the test suite, which does not install atheris.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

_scratch: Path | None = None


def scratch_dir() -> Path:
    """A private temporary folder for this process, removed at exit."""
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="ykt-fuzz-"))
        atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
    return _scratch


def fuzz_main(test_one_input: Callable[[bytes], None]) -> None:
    """Run libFuzzer over ``test_one_input`` with the command line's options."""
    try:
        import atheris  # type: ignore[import-untyped]
    except ImportError:
        sys.exit(
            "atheris is not installed here; run the target through "
            "`python fuzz/run.py TARGET`, which sets up .venv-fuzz"
        )

    # Coverage feedback for everything already imported: the parser under
    # test, its dependencies (openpyxl, lxml's Python parts, protobuf) and
    # the standard library modules they use.
    atheris.instrument_all()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
