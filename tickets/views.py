"""The help centre: customers open tickets, follow their place in line, talk, rate.

The same ticket page serves the ticket's assigned agent (hand-off first, then
the conversation, resolve and feedback) and staff.  Live updates come over the
ticket's socket (``tickets/static/tickets/ticket.js``); every form also works
without JavaScript.
"""

import uuid
from functools import cache

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from agents import validators
from agents.selectors import skill_catalog
from config import locale
from config.errors import DomainError, InvalidInput, TooMany
from tickets import selectors, services
from tickets.models import (
    BODY_MAX,
    COMMENT_MAX,
    FEEDBACK_TEXT_MAX,
    MESSAGE_MAX,
    SUBJECT_MAX,
    FeedbackKind,
    Rating,
    Ticket,
    TicketStatus,
)


class TicketForm(forms.Form):
    # One per rendered form: a second submit of the same form (a double click,
    # a retry after a lost answer) finds the first ticket instead of a twin.
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4, required=False)
    subject = forms.CharField(
        max_length=SUBJECT_MAX, label=gettext_lazy("What do you need help with?")
    )
    category = forms.ChoiceField(label=gettext_lazy("Topic"))
    body = forms.CharField(
        max_length=BODY_MAX,
        widget=forms.Textarea,
        label=gettext_lazy("Tell us more"),
        help_text=gettext_lazy("The more you tell us, the faster a person can help."),
    )
    # The ticket is routed to people who speak it: the page's language unless
    # the customer picks another.
    language = forms.ChoiceField(label=gettext_lazy("Language of the conversation"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [(s.slug, s.name) for s in skill_catalog()]
        self.fields["language"].choices = sorted(
            _language_names().items(), key=lambda choice: choice[1].casefold()
        )
        self.fields["language"].initial = translation.get_language()


class RatingForm(forms.Form):
    score = forms.TypedChoiceField(
        coerce=int, choices=[(n, str(n)) for n in range(5, 0, -1)], widget=forms.RadioSelect
    )
    comment = forms.CharField(max_length=COMMENT_MAX, required=False, widget=forms.Textarea)


# Waiting reasons (``marketplace.services.escalation``) that mean nobody online can
# take the ticket now: the page then gives the place in line without an estimated
# wait, which would be read from the lane's past pace and promise what no one can keep.
NO_ESTIMATE_REASONS = ("no_agent_online", "language_unserved", "skill_unserved")


def _language_name(code: str, *, capitalise: bool = True) -> str:
    """The language's name in the page's language; dispatch's English name where
    CLDR has none."""
    from marketplace.services.escalation import language_name

    name = locale.language_name(code, capitalise=capitalise)
    return language_name(code) if name == code else name


def _language_names() -> dict[str, str]:
    """Every ISO 639-1 code's name, for the page's script to label a language it
    hears of live (``ticket.waiting``) as the server labels those it renders."""
    return _language_names_in(translation.get_language())


@cache
def _language_names_in(language: str) -> dict[str, str]:
    return {code: _language_name(code) for code in sorted(validators.language_codes())}


def _waiting_context(ticket: Ticket, *, is_owner: bool) -> dict:
    """What the ticket's customer is told about their wait, once the escalation
    ladder reached the rung where they are told (else nothing), and the
    languages they may continue in."""
    from marketplace.services.escalation import customer_waiting_reason

    reason = customer_waiting_reason(ticket) if is_owner else None
    choices = []
    if reason and reason["code"] == "language_unserved":
        choices = [(code, _language_name(code)) for code in reason["languages"]]
    return {
        "waiting_reason": reason,
        "language_choices": choices,
        "no_estimate": bool(reason) and reason["code"] in NO_ESTIMATE_REASONS,
        "no_estimate_reasons": " ".join(NO_ESTIMATE_REASONS),
        "language_names": _language_names() if is_owner and ticket.is_waiting else None,
    }


def _visible(request, ticket_id: int) -> Ticket:
    try:
        return selectors.ticket_for(caller=request.user, ticket_id=ticket_id)
    except Ticket.DoesNotExist as exc:
        raise Http404 from exc


@login_required
def help_centre(request):
    user = request.user
    form = TicketForm(request.POST or None) if user.is_customer else None
    if request.method == "POST" and form is not None and form.is_valid():
        data = form.cleaned_data
        try:
            opened = services.ticket_open(
                caller=user,
                new=services.NewTicket(
                    subject=data["subject"],
                    body=data["body"],
                    category=data["category"],
                    language=data.get("language") or translation.get_language(),
                ),
                idempotency_key=(
                    f"help-centre:{data['idempotency_key']}" if data["idempotency_key"] else None
                ),
            )
        except (TooMany, services.IdempotencyKeyReused) as exc:
            form.add_error(None, exc.message)
        except InvalidInput as exc:
            for name, problems in exc.fields.items():
                for problem in problems:
                    form.add_error(name if name in form.fields else None, problem)
        else:
            messages.success(request, _("Your ticket is open. A person will be with you soon."))
            return redirect("help-ticket", ticket_id=opened.ticket.pk)
    tickets = selectors.tickets_visible_to(caller=user).order_by("-created_at", "-id")[:50]
    identities = (
        [i for i in selectors.customer_identities(user=user)[:20] if not i.linked]
        if user.is_customer
        else []
    )
    return render(
        request,
        "tickets/help.html",
        {"form": form, "tickets": tickets, "identities": identities},
        status=400 if form is not None and form.errors else 200,
    )


@login_required
@require_POST
def link_identity(request, identity_id: int):
    try:
        identity = services.customer_link(caller=request.user, link_id=identity_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Your conversations with %(partner)s are now here.")
            % {"partner": identity.integration.name},
        )
    return redirect("help")


@login_required
def ticket_page(request, ticket_id: int):
    ticket = _visible(request, ticket_id)
    user = request.user
    is_owner = user.is_customer and ticket.customer_id == user.pk
    is_agent = ticket.assigned_agent is not None and ticket.assigned_agent.user_id == user.pk
    conversation = list(selectors.messages_since(ticket=ticket))
    rating = Rating.objects.filter(ticket=ticket).first()
    reopen_until = (
        ticket.resolved_at + services.reopen_window()
        if ticket.status == TicketStatus.RESOLVED and ticket.resolved_at
        else None
    )
    context = {
        "ticket": ticket,
        "place": selectors.queue_place(ticket=ticket),
        "conversation": conversation,
        "last_message_id": conversation[-1].pk if conversation else 0,
        "is_owner": is_owner,
        "is_agent": is_agent,
        "can_post": (is_owner and ticket.status in ("queued", "offered", "assigned"))
        or (is_agent and ticket.status == "assigned"),
        "can_cancel": is_owner and ticket.is_waiting,
        "can_resolve": is_agent and ticket.status == TicketStatus.ASSIGNED,
        "can_reopen": is_owner and reopen_until is not None and timezone.now() <= reopen_until,
        "reopen_until": reopen_until,
        "rating": rating,
        "can_rate": is_owner
        and rating is None
        and ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED),
        "rating_form": RatingForm(),
        "can_tag": is_agent
        and ticket.status in (TicketStatus.ASSIGNED, TicketStatus.RESOLVED, TicketStatus.CLOSED),
        "feedback_kinds": FeedbackKind.choices,
        "message_max": MESSAGE_MAX,
        "feedback_max": FEEDBACK_TEXT_MAX,
        "eta_minutes": None,
        "language_label": _language_name(ticket.language),
        **_waiting_context(ticket, is_owner=is_owner),
    }
    if context["place"]:
        context["eta_minutes"] = max(1, -(-context["place"].eta_seconds // 60))
    return render(request, "tickets/ticket.html", context)


def _message(request, ticket_id: int) -> str:
    services.message_post(ticket_id=ticket_id, caller=request.user, body=request.POST.get("body"))
    return ""


def _cancel(request, ticket_id: int) -> str:
    services.ticket_cancel(ticket_id=ticket_id, caller=request.user)
    return _("Your ticket is cancelled.")


def _resolve(request, ticket_id: int) -> str:
    services.ticket_resolve(ticket_id=ticket_id, caller=request.user)
    return _("Marked as resolved.")


def _reopen(request, ticket_id: int) -> str:
    services.ticket_reopen(ticket_id=ticket_id, caller=request.user)
    return _("Reopened: you are back in line.")


def _language(request, ticket_id: int) -> str:
    ticket = services.ticket_language_change(
        ticket_id=ticket_id, caller=request.user, language=request.POST.get("language", "")
    )
    return _("You continue in %(language)s. Your place in line is kept.") % {
        "language": _language_name(ticket.language, capitalise=False)
    }


def _rate(request, ticket_id: int) -> str:
    form = RatingForm(request.POST)
    if not form.is_valid():
        raise InvalidInput(
            _("Choose a score from 1 to 5."), fields={"score": [_("Choose 1 to 5.")]}
        )
    services.rating_submit(ticket_id=ticket_id, caller=request.user, **form.cleaned_data)
    return _("Thank you for rating the help you got.")


def _feedback(request, ticket_id: int) -> str:
    services.feedback_tag(
        ticket_id=ticket_id,
        caller=request.user,
        area=request.POST.get("area", ""),
        kind=request.POST.get("kind", ""),
        text=request.POST.get("text", ""),
    )
    return _("Feedback sent to the product team.")


ACTIONS = {
    "message": _message,
    "cancel": _cancel,
    "resolve": _resolve,
    "reopen": _reopen,
    "language": _language,
    "rate": _rate,
    "feedback": _feedback,
}


@login_required
@require_POST
def ticket_action(request, ticket_id: int, action: str):
    handler = ACTIONS.get(action)
    if handler is None:
        raise Http404
    _visible(request, ticket_id)
    try:
        note = handler(request, ticket_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if note:
            messages.success(request, note)
    return redirect("help-ticket", ticket_id=ticket_id)
