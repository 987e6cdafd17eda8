"""One error tree for the gateway, and its one mapping to gRPC status codes.

Every refusal the gateway makes is a ``GatewayError`` subclass with a fixed
gRPC status and a message that is safe to send to the client: it names
records by id and row, never by content. The interceptor in
``gateway.server.security`` is the only place that turns these into statuses;
anything else that escapes a handler becomes INTERNAL with a generic message,
and its detail goes to the server log only.
"""

from __future__ import annotations

import grpc


class GatewayError(Exception):
    """Base class. ``status`` is the gRPC code the client receives."""

    status: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.safe_message = message


class InvalidArgumentError(GatewayError):
    """The request is malformed or inconsistent with itself."""

    status = grpc.StatusCode.INVALID_ARGUMENT


class MalformedRequestError(InvalidArgumentError):
    """The request bytes are not the message the method takes."""

    def __init__(self) -> None:
        super().__init__("the request does not parse")


class EnvelopeError(InvalidArgumentError):
    """A signed envelope does not verify, or its header does not fit."""


class ExpiredEnvelopeError(GatewayError):
    """An envelope outside its validity window, such as an old replay."""

    status = grpc.StatusCode.FAILED_PRECONDITION


class ChunkError(InvalidArgumentError):
    """A record chunk is out of order, missing, repeated or altered."""


class ManifestMismatchError(InvalidArgumentError):
    """The chunks do not add up to what the signed manifest declared."""


class UntrustedSignerError(GatewayError):
    """The signing certificate is untrusted, revoked, expired or not a signer."""

    status = grpc.StatusCode.PERMISSION_DENIED


class PermissionDeniedError(GatewayError):
    status = grpc.StatusCode.PERMISSION_DENIED


class UnauthenticatedError(GatewayError):
    status = grpc.StatusCode.UNAUTHENTICATED


class NotFoundError(GatewayError):
    status = grpc.StatusCode.NOT_FOUND


class ConflictError(GatewayError):
    """The same id was used before for different content."""

    status = grpc.StatusCode.ALREADY_EXISTS


class ConcurrentChangeError(GatewayError):
    """Another replica changed the same rows at the same moment; nothing was
    stored, and the same request sent again will be judged afresh."""

    status = grpc.StatusCode.ABORTED


class PreconditionError(GatewayError):
    """The request does not fit the current state, e.g. an expired lease."""

    status = grpc.StatusCode.FAILED_PRECONDITION
