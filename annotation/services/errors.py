"""Errors services raise on purpose. Views turn them into 400/409 responses with the message."""


class ServiceError(Exception):
    """Base for errors a caller can show to the user as they are."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict:
        """``{"errors": {field: [message]}}``, the shape every 400/409 body of the API has."""
        return {"errors": {self.field or "non_field_errors": [self.message]}}


class ValidationFailed(ServiceError):
    """The input breaks a rule of the project (e.g. a tie where ties are not allowed)."""


class Conflict(ServiceError):
    """The request was valid but the world moved on (e.g. the lease was taken over by others)."""

    status_code = 409
