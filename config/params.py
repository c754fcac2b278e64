"""Query and path parameters, parsed strictly in one place.

A value that does not parse is the caller's mistake, never a server error:
``ParameterError`` is a 400 that names the parameter, as JSON from the API
(``config.api``: it is an ``InvalidInput``) and as Django's 400 page from a
page (it is also a ``BadRequest``).  Digits are ASCII digits only: ``"²"``
passes ``str.isdigit`` and then fails ``int``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta

from django.core.exceptions import BadRequest
from django.urls import register_converter
from django.utils.dateparse import parse_date, parse_datetime

from config.errors import InvalidInput

# The largest id a path or query may name: ids are 64-bit (BigAutoField), and a
# larger number would overflow the database's integer before it could miss.
MAX_ID = 10**18 - 1
# The days an input may name: each day's hours in any time zone, and the week
# that starts on it, must fit in what a datetime holds (years 1 to 9999).
FIRST_DAY = date.min + timedelta(days=1)
LAST_DAY = date.max - timedelta(days=7)
_DIGITS = re.compile(r"[0-9]{1,18}")
# A slug as Django's SlugField holds it: ASCII letters, digits, hyphens and underscores.
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
SLUG_PATTERN = f"^{_SLUG.pattern}$"  # the same, for the OpenAPI schema
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A decimal number, as JSON writes one: no "nan", "inf" or "0x…", ASCII digits only.
_DECIMAL = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?([eE][-+]?[0-9]{1,3})?")


class ParameterError(InvalidInput, BadRequest):
    code = "invalid_parameter"


def _refuse(name: str, message: str) -> ParameterError:
    return ParameterError(f"{name}: {message}", fields={name: [message]})


def _raw(params: Mapping, name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    return value


def integer(params: Mapping, name: str, *, minimum: int = 1, maximum: int = MAX_ID) -> int | None:
    """A whole number within [minimum, maximum], or None when absent."""
    raw = _raw(params, name)
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw):
        raise _refuse(name, f"Give a whole number from {minimum} to {maximum}.")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise _refuse(name, f"Give a whole number from {minimum} to {maximum}.")
    return value


def number(
    params: Mapping, name: str, *, minimum: float, maximum: float, required: bool = False
) -> float | None:
    """A plain decimal number within [minimum, maximum], or None when absent and not required."""
    raw = _raw(params, name)
    message = f"Give a number from {minimum:g} to {maximum:g}, such as 12.5."
    if raw is None:
        if required:
            raise _refuse(name, f"This parameter is required. {message}")
        return None
    if not _DECIMAL.fullmatch(raw):
        raise _refuse(name, message)
    value = float(raw)
    if not (math.isfinite(value) and minimum <= value <= maximum):
        raise _refuse(name, message)
    return value


def day(params: Mapping, name: str) -> date | None:
    """A calendar date, ``YYYY-MM-DD``, or None when absent."""
    raw = _raw(params, name)
    if raw is None:
        return None
    try:
        value = parse_date(raw) if _DATE.fullmatch(raw) else None
    except ValueError:  # well formed, but no such day (a 13th month, 31 February)
        value = None
    if value is None:
        raise _refuse(name, "Give a date as YYYY-MM-DD, such as 2026-01-31.")
    if not FIRST_DAY <= value <= LAST_DAY:
        raise _refuse(name, f"Give a day from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}.")
    return value


def choice(params: Mapping, name: str, choices: Iterable[str]) -> str | None:
    """One of ``choices``, or None when absent."""
    raw = _raw(params, name)
    allowed = list(choices)
    if raw is None:
        return None
    if raw not in allowed:
        raise _refuse(name, f"Choose one of: {', '.join(allowed)}.")
    return raw


def slug(params: Mapping, name: str, *, max_length: int) -> str | None:
    """A slug of at most ``max_length`` characters, or None when absent."""
    raw = _raw(params, name)
    if raw is None:
        return None
    if len(raw) > max_length or not _SLUG.fullmatch(raw):
        raise _refuse(
            name,
            f"Give a slug of up to {max_length} letters, digits, hyphens or underscores.",
        )
    return raw


def moment(params: Mapping, name: str) -> datetime | None:
    """An ISO 8601 time, in UTC (taken as UTC when it names no offset), or None when absent."""
    raw = _raw(params, name)
    if raw is None:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:  # well formed, but no such time (a 13th month, an hour 25)
        value = None
    if value is None:
        raise _refuse(name, "Give an ISO 8601 time, such as 2026-01-31T09:30:00Z.")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        # In UTC, as the database compares it: 9999-12-31T23:00-05:00 is past the last
        # year a datetime holds, and PostgreSQL refuses an offset of 16 hours or more.
        return value.astimezone(UTC)
    except OverflowError:
        raise _refuse(name, "Give a time between the years 1 and 9999 in UTC.") from None


def id_or_moment(params: Mapping, name: str) -> int | datetime | None:
    """A message id (digits) or an ISO 8601 time, or None when absent."""
    raw = _raw(params, name)
    if raw is None:
        return None
    if raw.isascii() and raw.isdigit():
        return integer(params, name)
    try:
        return moment(params, name)
    except ParameterError:
        raise _refuse(name, "Give a message id or an ISO 8601 time.") from None


class IdConverter:
    """``<id:name>`` in a URL: an id, matched only when it could exist.

    A longer number than any id is no match (a 404), not an overflow in the
    database (a 500), as Django's ``<int:…>`` would let through.
    """

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


# Registered once, on import (config.urls and config.routing import this module).
register_converter(IdConverter, "id")
