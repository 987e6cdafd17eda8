"""Scraping /metrics from a running gateway finds every metric family.

The endpoint is served the way ``ykt serve --metrics`` serves it: prometheus
-client's HTTP server over the gateway's own registry.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client import start_http_server

from gateway.client import record_funds_release, submit
from keys.identity import Role
from tests.conftest import Running
from tests.test_submission import records_for, requests_for
from ykt.v1 import services_pb2, services_pb2_grpc

FAMILIES = (
    # gRPC server metrics, as go-grpc-prometheus names them.
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "grpc_server_msg_received_total",
    "grpc_server_msg_sent_total",
    "grpc_server_handling_seconds_bucket",
    # Business metrics.
    "ykt_batches",
    "ykt_records",
    "ykt_instructions",
    "ykt_deadlines",
    "ykt_dead_letters_total",
    "ykt_conflicting_results_total",
    "ykt_calendar_year_covered",
    "ykt_calendar_provisional_answers_total",
    "ykt_refused_calls_total",
    # Certificates, as the x509-certificate-exporter names them.
    "x509_cert_not_after",
    "x509_cert_expired",
    "x509_crl_next_update",
    "x509_crl_stale",
)


@pytest.fixture
def scrape(running: Running) -> Iterator[str]:
    server, thread = start_http_server(
        0, addr="127.0.0.1", registry=running.gateway.metrics.registry
    )
    port = server.server_port

    # Some traffic: a batch, its release, and a call refused for its role.
    department = running.client(Role.DEPARTMENT, "500154-NYNC")
    with running.channel(department) as channel:
        submit(channel, requests_for(department, records_for(running.persons[:3])))
        record_funds_release(channel, "b-1", "GK-2026-0001")
        with pytest.raises(grpc.RpcError):
            services_pb2_grpc.BankServiceStub(channel).PullInstructions(
                services_pb2.PullInstructionsRequest(max_sets=1)
            )

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        yield response.read().decode()
    server.shutdown()
    thread.join(timeout=5)


def test_every_family_is_served(scrape: str) -> None:
    for family in FAMILIES:
        assert f"# TYPE {family.removesuffix('_bucket').removesuffix('_total')}" in (
            scrape
        ), family


def test_the_traffic_shows_in_the_grpc_and_business_metrics(scrape: str) -> None:
    assert (
        'grpc_server_handled_total{grpc_code="OK",grpc_method="SubmitBatch",'
        'grpc_service="ykt.v1.DepartmentService",grpc_type="client_stream"} 1.0'
    ) in scrape
    assert 'grpc_code="PERMISSION_DENIED",grpc_method="PullInstructions"' in scrape
    assert 'ykt_refused_calls_total{reason="role"} 1.0' in scrape
    assert 'ykt_batches{state="VALIDATED"} 1.0' in scrape
    assert "x509_cert_not_after{" in scrape


def test_no_label_carries_personal_data(running: Running, scrape: str) -> None:
    for person in running.persons:
        for value in (person.name, person.id_number, person.account):
            assert value not in scrape
