"""Who may connect and call: a real gateway on port 0 over real mutual TLS."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.client import ClientCredentials
from gateway.security import AUTHORIZATION
from keys.ca import DevelopmentCA, write_credentials
from keys.identity import Identity, Role
from tests.conftest import Running
from ykt.v1 import services_pb2, services_pb2_grpc


def health_check(channel: grpc.Channel) -> health_pb2.HealthCheckResponse:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)


def pull(channel: grpc.Channel) -> services_pb2.PullInstructionsResponse:
    stub = services_pb2_grpc.BankServiceStub(channel)
    return stub.PullInstructions(
        services_pb2.PullInstructionsRequest(max_sets=1), timeout=10
    )


class TestTransport:
    def test_valid_client_is_served(self, running: Running) -> None:
        credentials = running.client(Role.BANK, "CQRCB")
        with running.channel(credentials) as channel:
            assert (
                health_check(channel).status == health_pb2.HealthCheckResponse.SERVING
            )
            assert list(pull(channel).sets) == []

    def test_client_without_certificate_is_refused(self, running: Running) -> None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=running.ca.cert_pem_bytes()
        )
        with (
            grpc.secure_channel(running.target, credentials) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            health_check(channel)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE

    def test_expired_client_certificate_is_refused(self, running: Running) -> None:
        now = dt.datetime.now(dt.UTC)
        credentials = running.client(
            Role.BANK,
            "CQRCB",
            not_before=now - dt.timedelta(days=30),
            not_after=now - dt.timedelta(days=1),
        )
        with (
            running.channel(credentials) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            health_check(channel)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE

    def test_certificate_from_unknown_ca_is_refused(
        self, running: Running, tmp_path
    ) -> None:
        stranger = DevelopmentCA.open_or_create(
            tmp_path / "stranger-ca", name="stranger"
        )
        directory = tmp_path / "stranger-client"
        write_credentials(
            stranger.dev_generate_credentials(Identity(Role.BANK, "CQRCB")),
            running.ca.cert,  # trusts the real gateway, but is not trusted by it
            directory,
        )
        with (
            running.channel(ClientCredentials(directory)) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            health_check(channel)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE

    def test_revoked_client_certificate_is_refused(self, running: Running) -> None:
        credentials = running.client(Role.BANK, "CQRCB")
        with running.channel(credentials) as channel:
            assert list(pull(channel).sets) == []
        serial = _serial(credentials)
        running.ca.revoke(serial)
        with (
            running.channel(credentials) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            pull(channel)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert "revoked" in (refused.value.details() or "")

    def test_stale_crl_refuses_instead_of_accepting(self, running: Running) -> None:
        credentials = running.client(Role.BANK, "CQRCB")
        running.ca.write_crl(
            next_update=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        )
        with (
            running.channel(credentials) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            pull(channel)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert "stale" in (refused.value.details() or "")


class TestRoles:
    @pytest.mark.parametrize(
        ("role", "org"),
        [
            pytest.param(Role.DEPARTMENT, "500154-NYNC", id="department"),
            pytest.param(Role.FINANCE, "500154", id="finance"),
            pytest.param(Role.AUDITOR, "audit", id="auditor"),
            pytest.param(Role.UNIT, "500154-001", id="unit"),
        ],
    )
    def test_non_bank_roles_cannot_pull_instructions(
        self, running: Running, role: Role, org: str
    ) -> None:
        with (
            running.channel(running.client(role, org)) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            pull(channel)
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED

    def test_bank_cannot_read_a_batch(self, running: Running) -> None:
        with running.channel(running.client(Role.BANK, "CQRCB")) as channel:
            stub = services_pb2_grpc.DepartmentServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetBatch(services_pb2.GetBatchRequest(batch_id="x"))
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED

    def test_only_finance_changes_the_policy_list(self, running: Running) -> None:
        request = services_pb2.PutPolicyRequest(
            policy=services_pb2.Policy(
                policy_code="CQ-NY-009",
                policy_name="测试补贴",
                department="NYNC",
                department_name="农业农村委员会",
                period_kind="year",
                max_amount_fen=100_00,
            )
        )
        with running.channel(running.client(Role.DEPARTMENT, "500154-NYNC")) as channel:
            stub = services_pb2_grpc.AdminServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.PutPolicy(request)
            assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
        with running.channel(running.client(Role.FINANCE, "500154")) as channel:
            stub = services_pb2_grpc.AdminServiceStub(channel)
            stub.PutPolicy(request)
            codes = [
                p.policy_code
                for p in stub.ListPolicies(services_pb2.ListPoliciesRequest()).policies
            ]
        assert "CQ-NY-009" in codes

    def test_every_service_method_has_an_authorization_entry(self) -> None:
        methods = {
            f"/{service.full_name}/{method.name}"
            for service in services_pb2.DESCRIPTOR.services_by_name.values()
            for method in service.methods
        }
        assert methods <= set(AUTHORIZATION)


def test_server_bounds_messages_and_keepalive() -> None:
    """The transport limits are spelled out; weakening one fails here."""
    from gateway import server

    options = dict(server.SERVER_OPTIONS)
    assert options["grpc.max_receive_message_length"] == 16 * 1024 * 1024
    assert options["grpc.max_send_message_length"] == 16 * 1024 * 1024
    assert options["grpc.http2.min_ping_interval_without_data_ms"] >= 30_000
    assert options["grpc.http2.max_ping_strikes"] <= 2


def _serial(credentials: ClientCredentials) -> int:
    from cryptography import x509

    return x509.load_pem_x509_certificate(credentials.cert).serial_number
