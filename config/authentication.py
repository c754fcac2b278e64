"""``Authorization: Token <key>``, read in one prepared statement.

DRF's ``TokenAuthentication`` reads the token and its user through the ORM;
building that query cost a web process about 1 ms of CPU per request, the
largest share of authenticating a ticket's creation.  This class reads the
user and the token's key with one prepared statement (``config.prepared``),
through ``QuerySet.raw()``, which makes the user as the ORM would (every
field through its converters).  Everything else is DRF's: the header's
parsing, the rules and their messages (an unknown key, an inactive user:
401), the ``WWW-Authenticate`` challenge and the OpenAPI scheme (a subclass
matches).
"""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework import authentication, exceptions, throttling
from rest_framework.authtoken.models import Token

from config import prepared

_statement: prepared.Statement | None = None


def _read_statement() -> prepared.Statement:
    """The user of a token, with the token's key: made on first use (the models are
    loaded then)."""
    global _statement
    if _statement is None:
        user = get_user_model()
        columns = ", ".join(f"u.{field.column}" for field in user._meta.concrete_fields)
        _statement = prepared.Statement(
            "humanline_token_user",
            f"SELECT {columns}, t.{Token._meta.pk.column} AS token_key"  # noqa: S608
            f" FROM {Token._meta.db_table} t JOIN {user._meta.db_table} u"
            f" ON u.{user._meta.pk.column} = t.{Token._meta.get_field('user').column}"
            f" WHERE t.{Token._meta.pk.column} = %s",
        )
    return _statement


def token_and_user(key: str) -> tuple | None:
    """(token, its user) for a key, in one statement; None for an unknown key.

    The token holds its key and user; its creation time is read if asked for.
    """
    with connection.cursor() as cursor:
        sql, params = _read_statement().prepared(connection, cursor, [key])
    found = list(get_user_model().objects.raw(sql, params))
    if not found:
        return None
    (user,) = found
    token = Token.from_db(connection.alias, ["key", "user_id"], [user.token_key, user.pk])
    token.user = user
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


def lockout_seconds() -> int:
    """How long a locked-out sign-in waits from now.

    Every attempt during the lockout starts it again
    (``AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT``), so the whole lockout
    is what is left after the attempt just refused.
    """
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_message() -> str:
    """What every sign-in surface says when the lockout refuses it."""
    minutes = math.ceil(lockout_seconds() / 60)
    return ngettext(
        "Too many failed sign-ins. Try again in %(minutes)d minute.",
        "Too many failed sign-ins. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


def lockout_page(request, original_response=None, credentials=None):
    """The sign-in page and the Django admin's, locked out (``AXES_LOCKOUT_CALLABLE``):
    a 429 page that says when to try again, with ``Retry-After`` in seconds.
    The token endpoint answers the same in JSON (``agents.apis``)."""
    response = render(
        request, "registration/locked_out.html", {"message": lockout_message()}, status=429
    )
    response["Retry-After"] = str(lockout_seconds())
    return response
