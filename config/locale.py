"""Which language and time zone a request is answered in.

Django's ``LocaleMiddleware`` picks the language from the switcher's cookie,
else the browser's ``Accept-Language``, else English.  ``PreferencesMiddleware``
runs after authentication: a signed-in person who chose a language that the
pages are translated into gets it whatever the browser says, and times are shown
in their own time zone.  An API client that signs in with a token is known only
inside the view, so the API answers in its ``Accept-Language``.
"""

import zoneinfo

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from agents import preferences, validators


def ui_language(code: str | None) -> str | None:
    """``code`` if the pages are translated into it, else None ("pt" → None)."""
    code = (code or "").strip().lower()
    return code if code in dict(settings.LANGUAGES) else None


def user_time_zone(user) -> str | None:
    """The IANA zone a signed-in person sees times in, if they have one."""
    if user.time_zone:
        return user.time_zone
    agent = getattr(user, "agent", None) if user.is_agent else None
    return agent.time_zone if agent is not None and agent.time_zone else None


class PreferencesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        zone = None
        if user is not None and user.is_authenticated:
            language = ui_language(user.language)
            if language:
                translation.activate(language)
                request.LANGUAGE_CODE = language
            zone = user_time_zone(user)
        if zone in validators.time_zones():
            timezone.activate(zoneinfo.ZoneInfo(zone))
        else:
            timezone.deactivate()
        return self.get_response(request)


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's ``set_language`` (the cookie, then back to ``next``), and for a
    signed-in person also their profile, with the browser's time zone if the
    form carried it and they had none."""
    response = django_set_language(request)
    language = ui_language(request.POST.get("language"))
    if language and request.user.is_authenticated:
        preferences.user_preferences_set(
            user=request.user, language=language, time_zone=request.POST.get("time_zone") or None
        )
    return response


def language_name(code: str, *, capitalise: bool = True) -> str:
    """An ISO 639-1 language's name in the active language ("fr" → "French",
    "français", "franska", "Französisch"), from Babel's CLDR data; the code
    when CLDR has no name for it.  Capitalised for a label; as CLDR writes it
    (lower case in French and Swedish) for the middle of a sentence."""
    from babel import Locale, UnknownLocaleError

    try:
        here = Locale.parse(translation.to_locale(translation.get_language() or "en"))
    except (UnknownLocaleError, ValueError):
        here = Locale("en")
    name = here.languages.get(code)
    if not name:
        return code
    return name[:1].upper() + name[1:] if capitalise else name


def recipient_language(user) -> str:
    """The language to write to ``user`` in: theirs if translated, else English."""
    return ui_language(user.language) or settings.LANGUAGE_CODE
