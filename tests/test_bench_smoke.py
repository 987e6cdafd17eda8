"""``ykt bench`` at a small size, as a smoke test: it runs, every record is
paid, and it prints its last line in the agreed form. No timing is judged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.bench import run_bench

LAST_LINE = re.compile(
    r"^end-to-end: [0-9,]+ records/s; ceiling: [0-9,]+ records/s; "
    r"ratio: [0-9.]+; peak RSS: [0-9,]+ MiB$"
)


def test_the_benchmark_runs_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_bench(300, tmp_path / "bench") == 0

    lines = capsys.readouterr().out.strip().splitlines()
    assert LAST_LINE.match(lines[-1]), lines[-1]
    for stage in ("parse", "submit", "verify", "deliver", "report"):
        assert any(line.startswith(stage) for line in lines), stage


def test_the_benchmark_never_empties_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")

    with pytest.raises(SystemExit, match="not a benchmark folder"):
        run_bench(10, tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
