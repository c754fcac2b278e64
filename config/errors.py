"""Domain errors raised by services and mapped to HTTP by ``config.api``.

Services know nothing of HTTP; they raise one of these and the API layer
answers with the status code the public contract names (409 for a transition
the current state does not allow, 400 for a broken rule about the input).
"""


class DomainError(Exception):
    code = "domain_error"
    status_code = 400

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}


class InvalidInput(DomainError):
    code = "invalid"
    status_code = 400


class InvalidTransition(DomainError):
    """The object's current state does not allow this change."""

    code = "invalid_transition"
    status_code = 409


class Conflict(DomainError):
    code = "conflict"
    status_code = 409


class TooMany(DomainError):
    """A limit on how much one person may hold at once (429)."""

    code = "too_many"
    status_code = 429


class Forbidden(DomainError):
    code = "forbidden"
    status_code = 403


class NotFound(DomainError):
    """Nothing the caller may see has this id."""

    code = "not_found"
    status_code = 404
