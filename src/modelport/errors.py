"""The one exception hierarchy of modelport.

Every error a user can see is a ``ModelportError``: it knows its HTTP status, a stable
snake_case ``code`` and a ``title``. The HTTP layer renders all of them with one handler
(RFC 9457 problem+json), the CLI prints ``error: <title>: <detail>``, and the SDK client
turns problem+json back into the same classes.

    ModelportError
    ├── InvalidInputError            422  input fails the signature / protocol
    │   ├── MalformedRequestError    400  body is not parseable at all
    │   └── UnsupportedMediaTypeError 415
    ├── UnauthorizedError            401  no valid API key where one is required
    ├── ForbiddenError               403  the server does not allow this action
    ├── MethodNotAllowedError        405
    ├── PayloadTooLargeError         413
    ├── NotFoundError                404
    │   ├── ModelNotFoundError
    │   ├── ModelVersionNotFoundError
    │   ├── ReferenceNotFoundError        a version without a reference profile
    │   ├── AliasNotFoundError
    │   └── JobNotFoundError
    ├── ConflictError                409
    │   └── JobCancelledError             a job was cancelled while it ran
    ├── ArtifactError                422  artifact cannot be stored / read
    │   ├── ArtifactIntegrityError        hash mismatch
    │   ├── UntrustedArtifactError        pickle or unknown types without trust
    │   └── ModelLoadError                the runtime cannot load the artifact
    ├── ConversionError              422  no faithful ONNX form (`modelport optimize`)
    ├── RateLimitedError             429  the key's or model's budget is spent (Retry-After)
    ├── ModelNotReadyError           503  (Retry-After)
    ├── RequestTimeoutError          504  the request outlived request_timeout_s
    ├── QueueFullError               503  load shedding (Retry-After)
    ├── StorageUnavailableError      503  database unreachable (Retry-After)
    │   └── BackendUnavailableError       a job broker, stream Redis or batch store unreachable
    ├── ModelError                   500  the model itself raised
    ├── AuditIntegrityError          500  the audit log's hash chain is broken
    └── ConfigurationError           500
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one input field, located by a JSON pointer."""

    pointer: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class ModelportError(Exception):
    """Base of every error modelport raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"
    retry_after: ClassVar[int | None] = None

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the body (gRPC sends them as trailers)."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    @property
    def pointer(self) -> str | None:
        """The first offending field, if the error names one."""
        return self.errors[0].pointer if self.errors else None

    def to_problem(self) -> dict[str, Any]:
        """RFC 9457 body (without instance/request id, added by the renderer)."""
        body: dict[str, Any] = {
            "type": f"https://modelport.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors:
            body["errors"] = [e.to_dict() for e in self.errors]
            body["pointer"] = self.errors[0].pointer
        return body


class InvalidInputError(ModelportError):
    status = 422
    code = "invalid_input"
    title = "Invalid input"

    def __init__(
        self, detail: str, *, pointer: str | None = None, errors: list[FieldError] | None = None
    ) -> None:
        if pointer is not None and errors is None:
            errors = [FieldError(pointer, detail)]
        super().__init__(detail, errors=errors)


class MalformedRequestError(InvalidInputError):
    status = 400
    code = "malformed_request"
    title = "Malformed request"


class UnsupportedMediaTypeError(InvalidInputError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class UnauthorizedError(ModelportError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="modelport"'}


class ForbiddenError(ModelportError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class MethodNotAllowedError(ModelportError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class PayloadTooLargeError(ModelportError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class NotFoundError(ModelportError):
    status = 404
    code = "not_found"
    title = "Not found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"
    title = "Model not found"


class ModelVersionNotFoundError(NotFoundError):
    code = "model_version_not_found"
    title = "Model version not found"


class ReferenceNotFoundError(NotFoundError):
    code = "reference_not_found"
    title = "Reference profile not found"


class AliasNotFoundError(NotFoundError):
    code = "alias_not_found"
    title = "Alias not found"


class JobNotFoundError(NotFoundError):
    code = "job_not_found"
    title = "Job not found"


class ConflictError(ModelportError):
    status = 409
    code = "conflict"
    title = "Conflict"


class JobCancelledError(ConflictError):
    code = "job_cancelled"
    title = "Job cancelled"


class ArtifactError(ModelportError):
    status = 422
    code = "artifact_error"
    title = "Artifact error"


class ArtifactIntegrityError(ArtifactError):
    code = "artifact_integrity_error"
    title = "Artifact integrity check failed"


class UntrustedArtifactError(ArtifactError):
    code = "untrusted_artifact"
    title = "Untrusted artifact"


class ModelLoadError(ArtifactError):
    code = "model_load_error"
    title = "Model failed to load"


class ConversionError(ModelportError):
    status = 422
    code = "conversion_failed"
    title = "Conversion failed"


class RateLimitedError(ModelportError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        """``headers``: none when the SDK client rebuilds the error from an answer's body."""
        super().__init__(detail)
        self._headers = headers or {}

    def headers(self) -> dict[str, str]:
        """Retry-After and the RateLimit-* fields of the budget that refused the request."""
        return dict(self._headers)


class ModelNotReadyError(ModelportError):
    status = 503
    code = "model_not_ready"
    title = "Model not ready"
    retry_after = 1


class QueueFullError(ModelportError):
    status = 503
    code = "queue_full"
    title = "Server busy"
    retry_after = 1


class StorageUnavailableError(ModelportError):
    status = 503
    code = "storage_unavailable"
    title = "Registry storage unavailable"
    retry_after = 2


class BackendUnavailableError(StorageUnavailableError):
    """A service beside the registry (a job broker, a stream's Redis, a batch run's object
    store) is unreachable: passing, like the registry's own outages."""

    code = "backend_unavailable"
    title = "Backing service unavailable"


class RequestTimeoutError(ModelportError):
    status = 504
    code = "request_timeout"
    title = "Request timed out"


class ModelError(ModelportError):
    status = 500
    code = "model_error"
    title = "The model raised an error"


class AuditIntegrityError(ModelportError):
    status = 500
    code = "audit_integrity_error"
    title = "Audit log integrity check failed"


class ConfigurationError(ModelportError):
    status = 500
    code = "configuration_error"
    title = "Configuration error"


def error_class_for(code: str) -> type[ModelportError]:
    """The class that renders ``code``; used by the SDK client to rebuild errors."""
    stack: list[type[ModelportError]] = [ModelportError]
    while stack:
        cls = stack.pop()
        if cls.code == code:
            return cls
        stack.extend(cls.__subclasses__())
    return ModelportError
