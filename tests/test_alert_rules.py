"""The alert rules and the dashboard: valid, tested, and about real metrics.

``promtool`` (Debian package ``prometheus``) checks and unit-tests the rules;
without it those two tests skip and say why. The name checks run everywhere:
every metric an alert or a dashboard panel queries must be one that
``gateway/metrics.py`` exports (or Prometheus' own ``up``), so a renamed
metric cannot leave an alert silently watching nothing.

The rule files are read line by line, not with a YAML library (none is a
dependency): ``alerts.yml`` keeps each ``expr`` either on its line or as a
``|`` block, and the parser below fails loudly on anything else.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from gateway.metrics import GatewayMetrics
from gateway.store import db
from keys.ca import DevelopmentCA
from keys.trust import TrustStore

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "monitoring"
ALERTS = MONITORING / "alerts.yml"
ALERT_TESTS = MONITORING / "alerts.test.yml"
DASHBOARD = MONITORING / "grafana" / "ykt-gateway.json"

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (apt-get install -y prometheus)",
)

_PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
}


# -- reading the files ----------------------------------------------------------


def alert_rules() -> dict[str, str]:
    """Alert name -> PromQL expression, from ``alerts.yml``."""
    rules: dict[str, str] = {}
    lines = ALERTS.read_text().splitlines()
    name: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if match := re.match(r"^\s*- alert: (\S+)\s*$", line):
            name = match.group(1)
            continue
        if not (match := re.match(r"^(\s*)expr:\s*(.*)$", line)):
            continue
        assert name is not None, f"expr without an alert at line {index}"
        indent, rest = len(match.group(1)), match.group(2).strip()
        if rest != "|":
            rules[name] = rest
            continue
        block: list[str] = []
        while index < len(lines) and (
            not lines[index].strip()
            or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            block.append(lines[index].strip())
            index += 1
        rules[name] = " ".join(block).strip()
    assert rules, "no alert rules found"
    return rules


def alerts_under_test() -> dict[str, set[str]]:
    """Alert name -> {"fires", "silent"}: what ``alerts.test.yml`` checks."""
    seen: dict[str, set[str]] = {}
    current: str | None = None
    for line in ALERT_TESTS.read_text().splitlines():
        if match := re.match(r"^\s*alertname: (\S+)\s*$", line):
            current = match.group(1)
        elif current and (match := re.match(r"^\s*exp_alerts:\s*(.*)$", line)):
            kind = "silent" if match.group(1).strip() == "[]" else "fires"
            seen.setdefault(current, set()).add(kind)
            current = None
    return seen


def dashboard_expressions() -> list[str]:
    def walk(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return list(walk(json.loads(DASHBOARD.read_text())))


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery windows
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )
    text = re.sub(r"\boffset\s+\S+", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)\b(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _PROMQL_WORDS:
            continue
        names.add(word)
    return names


@pytest.fixture(scope="module")
def exported_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every sample name ``gateway/metrics.py`` can export, all parts wired."""
    tmp = tmp_path_factory.mktemp("exported")
    engine = db.connect(db.sqlite_url(tmp / "gateway.db"))
    db.migrate(engine)
    ca = DevelopmentCA.open_or_create(tmp / "pki")
    metrics = GatewayMetrics(CollectorRegistry())
    metrics.watch_store(
        engine, deadline_counts=lambda: [], calendar_coverage=lambda: {}
    )
    metrics.watch_certificates(
        gateway_certificates=[],
        trust=TrustStore(ca.ca_path, [ca.crl_path], clock=_now),
        dev_ca=ca,
    )

    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "gauge": ("",),
    }
    names = {"up"}
    for family in metrics.registry.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    engine.dispose()
    return names


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- the tests ------------------------------------------------------------------


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "test", "rules", ALERT_TESTS.name],
        capture_output=True,
        text=True,
        check=False,
        cwd=MONITORING,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_is_tested_firing_and_not_firing() -> None:
    tested = alerts_under_test()

    missing = {
        name: {"fires", "silent"} - tested.get(name, set()) for name in alert_rules()
    }

    assert {name: kinds for name, kinds in missing.items() if kinds} == {}
    assert set(tested) <= set(alert_rules()), "tests for alerts that do not exist"


def test_alerts_query_only_exported_metrics(exported_names: set[str]) -> None:
    used = {name for expr in alert_rules().values() for name in metric_names(expr)}

    assert used, "no metric names found in the rules"
    assert used - exported_names == set()


def test_dashboard_queries_only_exported_metrics(exported_names: set[str]) -> None:
    expressions = dashboard_expressions()
    used = {name for expr in expressions for name in metric_names(expr)}

    assert len(expressions) >= 10
    assert used - exported_names == set()
    for family in ("grpc_server_handled_total", "ykt_deadlines", "x509_crl_stale"):
        assert family in used


def test_dashboard_uses_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}

    assert variables["datasource"]["type"] == "datasource"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_the_name_extractor_finds_names_and_skips_the_rest() -> None:
    expr = (
        'sum by (bank, kind) (increase(ykt_dead_letters_total{kind="a b"}[15m])) > 0'
        " or (up unless up offset 15m) and histogram_quantile(0.9, "
        "rate(grpc_server_handling_seconds_bucket[$__rate_interval]))"
    )

    assert metric_names(expr) == {
        "ykt_dead_letters_total",
        "up",
        "grpc_server_handling_seconds_bucket",
    }
