"""``Authorization: Token <key>``, read in one prepared statement.

DRF's ``TokenAuthentication`` reads the token and its user through the ORM;
building that query cost a web process about 1 ms of CPU per request, the
largest share of authenticating a ticket's creation.  This class reads the
same two rows with one prepared statement (``config.prepared``) and builds
them with ``config.rows``.  Everything else is DRF's: the header's parsing,
the rules and their messages (an unknown key, an inactive user: 401), the
``WWW-Authenticate`` challenge and the OpenAPI scheme (a subclass matches).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, throttling
from rest_framework.authtoken.models import Token

from config import prepared, rows


class _Read:
    """The statement and the readers, made on first use (the models are loaded then)."""

    def __init__(self):
        user = get_user_model()
        self.token = rows.Reader(Token)
        self.user = rows.Reader(user)
        self.statement = prepared.Statement(
            "humanline_token_user",
            f"SELECT {self.token.columns('t')}, {self.user.columns('u')}"  # noqa: S608
            f" FROM {Token._meta.db_table} t JOIN {user._meta.db_table} u"
            f" ON u.{user._meta.pk.column} = t.{Token._meta.get_field('user').column}"
            f" WHERE t.{Token._meta.pk.column} = %s",
        )


_read: _Read | None = None


def token_and_user(key: str) -> tuple | None:
    """(token, its user) for a key, in one statement; None for an unknown key."""
    global _read
    if _read is None:
        _read = _Read()
    with connection.cursor() as cursor:
        _read.statement.execute(connection, cursor, [key])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(_read.token.fields)
    token = _read.token.read(connection, row[:split])
    user = _read.user.read(connection, row[split:])
    Token._meta.get_field("user").set_cached_value(token, user)
    return token, user


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        if self.model is not None and self.model is not Token:
            return super().authenticate_credentials(key)  # a subclass's own token model
        found = token_and_user(key)
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token, user = found
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, token


def client_address(request) -> str | None:
    """The client's address as the API's throttles see it (``TRUSTED_PROXY_COUNT``):
    the sign-in lockout (django-axes, ``AXES_CLIENT_IP_CALLABLE``) counts by it too."""
    return throttling.BaseThrottle().get_ident(request)


def sign_in_name(request, credentials: dict | None) -> str | None:
    """The account a sign-in names, as the lockout counts it (``AXES_USERNAME_CALLABLE``).

    Every sign-in form and the token endpoint send it as ``username`` (the
    e-mail address); case and spaces do not make it another account.
    """
    if credentials and credentials.get("username"):
        return str(credentials["username"]).strip().lower()
    data = getattr(request, "data", None) or getattr(request, "POST", {})
    name = data.get("username") if hasattr(data, "get") else None
    return str(name).strip().lower() if name else None
