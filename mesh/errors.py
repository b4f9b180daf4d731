"""Domain errors that the server edge turns into gRPC statuses.

Engines and servicers raise these; the mesh interceptor aborts the RPC with the matching
status code and the message, unchanged. Any other exception becomes INTERNAL with a request id
and no traceback on the wire.
"""

from __future__ import annotations

import grpc


class MeshError(Exception):
    """An error with a gRPC status code and a message a caller can act on."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        """Create the error; ``message`` is sent to the client as the status details."""
        super().__init__(message)
        self.message = message


class InvalidArgument(MeshError):
    """The request is malformed or out of range."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(MeshError):
    """A named thing (voice, adapter, session, entry) does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(MeshError):
    """A named thing exists already in a conflicting form."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(MeshError):
    """The system is not in a state that allows the request."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(MeshError):
    """A size, duration, rate or capacity limit was reached."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(MeshError):
    """A dependency or the engine cannot serve now; retrying later may work."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(MeshError):
    """A downstream call ran past its deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(MeshError):
    """The call carries no valid token."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(MeshError):
    """The token is valid but not for this RPC."""

    code = grpc.StatusCode.PERMISSION_DENIED
