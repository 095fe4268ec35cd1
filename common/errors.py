"""The closed error taxonomy of the backend and its mapping to HTTP.

Every failure that leaves a service is an ``AppError`` subclass; ``common.http`` turns it into
a JSON body ``{"error": message, "code": code, ...details}`` with the status below.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """What went wrong, from the caller's point of view."""

    INVALID_ARGUMENT = "invalid-argument"
    """The request is malformed: bad JSON, unknown or missing fields, wrong types."""
    UNAUTHENTICATED = "unauthenticated"
    """No valid credentials were sent (or a webhook signature does not verify)."""
    PERMISSION_DENIED = "permission-denied"
    """The caller is known but may not do this to this stream or memorial."""
    NOT_FOUND = "not-found"
    """The stream, memorial or provider resource does not exist."""
    CONFLICT = "conflict"
    """The resource is in a state that makes the request impossible (e.g. already live)."""
    FAILED_PRECONDITION = "failed-precondition"
    """The request is valid but the system is not ready for it (e.g. no live input yet)."""
    RESOURCE_EXHAUSTED = "resource-exhausted"
    """A rate limit was hit; retry after the indicated delay."""
    UNAVAILABLE = "unavailable"
    """A dependency (Cloudflare, Firestore) is temporarily failing; retry later."""
    INTERNAL = "internal"
    """A bug or an unexpected answer from a dependency. Details go to the log only."""


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.FAILED_PRECONDITION: 400,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


class AppError(Exception):
    """Base of every error a service raises on purpose.

    Args:
        message: Human-readable text for the caller; never contains secrets.
        details: Extra JSON-safe fields merged into the error body.
        retry_after_s: Seconds the caller should wait, sent as ``Retry-After``.
    """

    code: ErrorCode = ErrorCode.INTERNAL

    def __init_subclass__(cls, code: ErrorCode | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.retry_after_s = retry_after_s

    @property
    def http_status(self) -> int:
        """The HTTP status this error is rendered with."""
        return HTTP_STATUS[self.code]


class InvalidArgumentError(AppError, code=ErrorCode.INVALID_ARGUMENT):
    """The request body or parameters are invalid."""


class UnauthenticatedError(AppError, code=ErrorCode.UNAUTHENTICATED):
    """Authentication is required or failed."""


class PermissionDeniedError(AppError, code=ErrorCode.PERMISSION_DENIED):
    """The authenticated caller lacks the right for this action."""


class NotFoundError(AppError, code=ErrorCode.NOT_FOUND):
    """The addressed resource does not exist."""


class ConflictError(AppError, code=ErrorCode.CONFLICT):
    """The resource's current state forbids the request."""


class FailedPreconditionError(AppError, code=ErrorCode.FAILED_PRECONDITION):
    """The request cannot run until something else happens first."""


class ResourceExhaustedError(AppError, code=ErrorCode.RESOURCE_EXHAUSTED):
    """A rate limit or quota was reached."""


class UnavailableError(AppError, code=ErrorCode.UNAVAILABLE):
    """A dependency is temporarily unavailable."""


class InternalError(AppError, code=ErrorCode.INTERNAL):
    """Unexpected failure; the message sent to callers stays generic."""
