"""Validation of what applicants tell us: languages, countries, time zones, documents."""

import zoneinfo
from functools import cache

import filetype
import pycountry

ALLOWED_DOCUMENT_TYPES = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
}


@cache
def language_codes() -> frozenset[str]:
    """ISO 639-1 two-letter codes, from the ISO tables that pycountry ships."""
    return frozenset(lang.alpha_2 for lang in pycountry.languages if getattr(lang, "alpha_2", None))


@cache
def country_codes() -> frozenset[str]:
    return frozenset(country.alpha_2 for country in pycountry.countries)


@cache
def time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def sniff_document_type(head: bytes) -> str | None:
    """The MIME type judged from the file's first bytes, or None if not allowed.

    The name and the declared Content-Type are ignored: both are chosen by the
    client.
    """
    kind = filetype.guess(head)
    if kind is None or kind.mime not in ALLOWED_DOCUMENT_TYPES:
        return None
    return kind.mime
