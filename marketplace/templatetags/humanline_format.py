"""Number formats shared by the pages and their scripts (``static/js/humanline.js``)."""

from decimal import Decimal

from babel.numbers import format_currency
from django import template
from django.conf import settings
from django.utils import translation

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """42 → "42 s"; 125 → "2 min 5 s"; 3720 → "1 h 2 min"; None → "—"."""
    if seconds is None or seconds == "":
        return "—"
    total = round(float(seconds))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, rest = divmod(total, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(total, 3600)
    return f"{hours} h {rest // 60} min"


@register.filter
def percent(share) -> str:
    """0.754 → "75 %"; None → "—"."""
    if share is None or share == "":
        return "—"
    return f"{round(float(share) * 100)} %"


@register.simple_tag
def money(amount, currency) -> str:
    """2.5, "EUR" → "€2.50" in English, "2,50 €" in French, Swedish and German:
    CLDR's rules for the active language, as ``Intl.NumberFormat`` shows it in
    the scripts (``static/js/humanline.js``, with the page's ``lang``)."""
    locale = translation.to_locale(translation.get_language() or settings.LANGUAGE_CODE)
    return format_currency(Decimal(str(amount)), str(currency).upper(), locale=locale)


@register.filter
def job_text(job) -> str:
    """A payroll job's state in words, as ``GET /api/v1/admin/payroll-jobs/{id}/`` says it."""
    from marketplace.services.payroll_jobs import job_status_text

    return job_status_text(job)


@register.filter
def as_percent_width(progress) -> str:
    """0.42 → "42" (a CSS width); None → "0"."""
    return "0" if progress is None else f"{round(float(progress) * 100)}"
