"""Who is calling, and may they: the gateway's one gate for every RPC.

Invariants and threats:
- Mutual TLS is required: gRPC refuses a handshake without a client
  certificate that chains to a trusted CA and is within its validity period.
  Those refusals never reach Python.
- The caller's role and organisation come from the URI SAN of the client
  certificate, and only from there.
- Revocation is checked here, against the cached CRL, on every call. A stale
  CRL refuses the call (UNAUTHENTICATED); it never waves it through.
- ``AUTHORIZATION`` is the one table of which role may call which RPC. A method
  missing from it is denied to everyone.
- Errors leave through one mapping: a ``GatewayError`` becomes its fixed status
  with its safe message; anything else becomes INTERNAL with a generic text,
  and the detail stays in the server log.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc
from cryptography import x509
from google.protobuf.message import DecodeError

from gateway.errors import (
    GatewayError,
    MalformedRequestError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from keys.identity import Identity, IdentityError, Role
from keys.trust import CertificateRevokedError, TrustError, TrustStore

_logger = logging.getLogger(__name__)

ALL_ROLES = frozenset(Role)
_READERS = frozenset({Role.DEPARTMENT, Role.FINANCE, Role.AUDITOR})

AUTHORIZATION: dict[str, frozenset[Role]] = {
    "/ykt.v1.DepartmentService/SubmitBatch": frozenset({Role.DEPARTMENT}),
    "/ykt.v1.DepartmentService/GetBatch": _READERS,
    "/ykt.v1.DepartmentService/ListRecords": _READERS,
    "/ykt.v1.DepartmentService/ValidateBatch": frozenset({Role.DEPARTMENT}),
    "/ykt.v1.DepartmentService/GetRecordLineage": _READERS,
    "/ykt.v1.DepartmentService/RecordFundsRelease": frozenset(
        {Role.DEPARTMENT, Role.FINANCE}
    ),
    "/ykt.v1.BankService/PullAccountChecks": frozenset({Role.BANK}),
    "/ykt.v1.BankService/PostAccountCheckResults": frozenset({Role.BANK}),
    "/ykt.v1.BankService/PullInstructions": frozenset({Role.BANK}),
    "/ykt.v1.BankService/Acknowledge": frozenset({Role.BANK}),
    "/ykt.v1.BankService/PostResults": frozenset({Role.BANK}),
    "/ykt.v1.AdminService/ListPolicies": ALL_ROLES,
    "/ykt.v1.AdminService/PutPolicy": frozenset({Role.FINANCE}),
    "/ykt.v1.AdminService/SetAgentBank": frozenset({Role.FINANCE}),
    "/ykt.v1.AdminService/ListCertificates": frozenset({Role.FINANCE, Role.AUDITOR}),
    "/ykt.v1.AdminService/ListDeadlines": frozenset({Role.FINANCE, Role.AUDITOR}),
    "/ykt.v1.AdminService/GetRecord": _READERS,
    "/ykt.v1.RegistryService/DeclareAccount": frozenset({Role.UNIT}),
    "/ykt.v1.RegistryService/ReviewDeclaration": frozenset({Role.UNIT}),
    "/ykt.v1.RegistryService/ConfirmDeclaration": frozenset({Role.FINANCE}),
    "/ykt.v1.RegistryService/GetDeclaration": frozenset(
        {Role.UNIT, Role.FINANCE, Role.AUDITOR}
    ),
    "/grpc.health.v1.Health/Check": ALL_ROLES,
    "/grpc.health.v1.Health/Watch": ALL_ROLES,
    "/grpc.health.v1.Health/List": ALL_ROLES,
}


@functools.lru_cache(maxsize=4096)
def _certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def peer_certificate(context: grpc.ServicerContext) -> x509.Certificate:
    pems = context.auth_context().get("x509_pem_cert")
    if not pems:
        raise UnauthenticatedError("a client certificate is required")
    return _certificate(pems[0])


def peer_identity(context: grpc.ServicerContext) -> Identity:
    """The identity in the caller's client certificate."""
    try:
        return Identity.from_certificate(peer_certificate(context))
    except IdentityError as exc:
        raise UnauthenticatedError(
            "the client certificate names no valid identity"
        ) from exc


if TYPE_CHECKING:
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:
    _ServerInterceptor = grpc.ServerInterceptor
    _Handler = grpc.RpcMethodHandler


class SecurityInterceptor(_ServerInterceptor):
    def __init__(
        self,
        trust: TrustStore,
        on_refusal: Callable[[str, str], None] = lambda method, why: None,
        on_certificate: Callable[[x509.Certificate], None] = lambda cert: None,
    ) -> None:
        self._trust = trust
        self._on_refusal = on_refusal
        self._on_certificate = on_certificate

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        allowed = AUTHORIZATION.get(method, frozenset())

        def gate(context: grpc.ServicerContext) -> None:
            self._authorize(context, method, allowed)

        return _wrap(handler, gate)

    def _authorize(
        self, context: grpc.ServicerContext, method: str, allowed: frozenset[Role]
    ) -> None:
        # 1. A certificate with one identity (TLS already verified the chain).
        cert = peer_certificate(context)
        self._on_certificate(cert)
        try:
            identity = peer_identity(context)
        except UnauthenticatedError:
            self._on_refusal(method, "unknown_identity")
            raise

        # 2. Not revoked, by a fresh CRL.
        try:
            self._trust.check_not_revoked(cert)
        except CertificateRevokedError as exc:
            self._on_refusal(method, "revoked")
            raise UnauthenticatedError(str(exc)) from exc
        except TrustError as exc:
            self._on_refusal(method, "stale_crl")
            raise UnauthenticatedError(str(exc)) from exc

        # 3. The role may call this method.
        if identity.role not in allowed:
            self._on_refusal(method, "role")
            raise PermissionDeniedError("this role may not call this method")


def _abort(context: grpc.ServicerContext, exc: Exception) -> None:
    if isinstance(exc, GatewayError):
        _logger.info(
            "call refused",
            extra={"status": exc.status.name, "error": type(exc).__name__},
        )
        context.abort(exc.status, exc.safe_message)
    _logger.error("unhandled error in a handler", exc_info=exc)
    context.abort(grpc.StatusCode.INTERNAL, "internal error")


def _wrap(handler: _Handler, gate: Callable[[grpc.ServicerContext], None]) -> _Handler:
    """The handler behind the gate, with requests parsed where errors map.

    gRPC would parse request bytes before the handler runs and answer a
    malformed message with INTERNAL. Parsing here instead lets garbage,
    truncated or absurdly nested protobuf get INVALID_ARGUMENT, and only
    after the caller passed the gate.
    """
    parse = handler.request_deserializer or (lambda data: data)

    def parsed(data: bytes) -> Any:
        try:
            return parse(data)
        except (DecodeError, RecursionError) as exc:
            raise MalformedRequestError() from exc

    def requests_of(request: Any, streaming: bool) -> Any:
        return map(parsed, request) if streaming else parsed(request)

    def unary_response(behavior: Callable[..., Any], streaming: bool) -> Any:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                gate(context)
                return behavior(requests_of(request, streaming), context)
            except grpc.RpcError:
                _stream_broke(context)
            except Exception as exc:
                _abort(context, exc)

        return run

    def stream_response(behavior: Callable[..., Any], streaming: bool) -> Any:
        def run(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                gate(context)
                yield from behavior(requests_of(request, streaming), context)
            except grpc.RpcError:
                _stream_broke(context)
            except Exception as exc:
                _abort(context, exc)

        return run

    kwargs = {
        "request_deserializer": None,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            unary_response(handler.unary_unary, False), **kwargs
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            unary_response(handler.stream_unary, True), **kwargs
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            stream_response(handler.unary_stream, False), **kwargs
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        stream_response(handler.stream_stream, True), **kwargs
    )


def _stream_broke(context: grpc.ServicerContext) -> None:
    # The client's request stream failed in transport (cancelled, or a
    # message over the size limit): gRPC has already answered the client.
    # An ordinary event, not a fault of ours; no traceback.
    _logger.info("request stream broke")
    context.abort(grpc.StatusCode.CANCELLED, "the request stream broke")
