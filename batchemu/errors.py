"""The errors a Batch (or Logs) operation can answer with, in AWS's own names."""

from __future__ import annotations


class ServiceError(Exception):
    """An error the client is told about: `code` becomes `__type` and `x-amzn-ErrorType`."""

    code = "ServerException"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class ClientException(ServiceError):
    """Bad input or a request that can't be honoured in the current state (HTTP 400)."""

    code = "ClientException"
    status = 400


class ServerException(ServiceError):
    """Something went wrong on our side (HTTP 500)."""

    code = "ServerException"
    status = 500


class NotBuiltError(ServiceError):
    """An operation in the model that batchemu does not implement yet (HTTP 501)."""

    code = "NotImplemented"
    status = 501

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"{operation} is not implemented by batchemu yet; see the operation coverage table in README.md"
        )
