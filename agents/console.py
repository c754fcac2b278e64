"""The agent console (``/agent/``): presence, live offers, active tickets and the conversation.

Pages only: every change goes through the services (presence, dispatch,
tickets).  The page is complete without JavaScript — offers answer through
plain forms and the conversation posts and redirects — and
``static/js/agent-console.js`` makes it live: the agent socket (``/ws/agent/``)
for presence, offers and assignments, the ticket socket (``/ws/tickets/<id>/``)
for the conversation, and htmx to swap the conversation pane in place.
"""

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from agents import presence as presence_services
from agents import selectors
from agents.models import Agent, AgentStatus, Presence
from config import params
from config.errors import DomainError
from marketplace import pay_views
from marketplace import selectors as marketplace_selectors
from marketplace.models import DeclineReason, Offer, OfferStatus
from marketplace.services import dispatch
from marketplace.services import pricing as pricing_services
from marketplace.templatetags.humanline_format import duration
from tickets import selectors as ticket_selectors
from tickets import services as ticket_services
from tickets.models import FEEDBACK_TEXT_MAX, MESSAGE_MAX, FeedbackKind, Ticket, TicketStatus

RECENT_RESOLVED = 5
TAGGABLE = (TicketStatus.ASSIGNED, TicketStatus.RESOLVED, TicketStatus.CLOSED)


def decline_reasons() -> list[dict]:
    """The reasons an agent may give for a decline, each with what it does to them.

    Both offer cards use them: the server-rendered one (``_offer.html``) and the
    live one (``agent-console.js`` reads them from the page), so the words and
    the dispatch rule they describe (``rules.passed``) stay in step.
    """
    cooldown = duration(settings.HUMANLINE["REOFFER_COOLDOWN_SECONDS"])
    again = _("It may be offered to you again after %(cooldown)s.") % {"cooldown": cooldown}
    hints = {
        DeclineReason.NOT_MY_AREA: _("You won't be offered this ticket again."),
        DeclineReason.BUSY: again,
        DeclineReason.OTHER: again,
    }
    return [
        {"value": value, "label": label, "hint": hints[value]}
        for value, label in DeclineReason.choices
    ]


def _approved_agent_or_redirect(request) -> Agent | None:
    """The approved agent, or None after queueing a message explaining where they are sent."""
    user = request.user
    if user.is_operations:
        messages.info(request, _("The agent console is for agents; this is the operations floor."))
        return None
    agent = selectors.agent_for_user(user=user) if user.is_agent else None
    if agent is None:
        messages.info(
            request,
            _("The agent console is for Humanline agents. Need help? Talk to a person here."),
        )
        return None
    if agent.status != AgentStatus.APPROVED:
        messages.info(
            request,
            _("The agent console opens once your application is approved (it is %(status)s).")
            % {"status": agent.get_status_display().lower()},
        )
        return None
    return agent


def _elsewhere(request):
    user = request.user
    if user.is_operations:
        return redirect("ops-floor")
    if user.is_agent:
        return redirect("apply-status")
    return redirect("help")


def _agent(request) -> Agent:
    """For the console's actions: the approved agent or a 404 (no redirect dance for POSTs)."""
    agent = selectors.agent_for_user(user=request.user) if request.user.is_agent else None
    if agent is None or agent.status != AgentStatus.APPROVED:
        raise Http404
    return agent


def _my_ticket(request, agent: Agent, ticket_id: int) -> Ticket:
    try:
        return ticket_selectors.tickets_visible_to(caller=request.user).get(
            pk=ticket_id, assigned_agent=agent
        )
    except Ticket.DoesNotExist as exc:
        raise Http404 from exc


def _pane_context(request, agent: Agent, ticket: Ticket | None) -> dict:
    if ticket is None:
        return {"pane_ticket": None}
    conversation = list(ticket_selectors.messages_since(ticket=ticket))
    offer = (
        Offer.objects.filter(ticket=ticket, agent=agent, status=OfferStatus.ACCEPTED)
        .order_by("-created_at")
        .first()
    )
    assigned = ticket.status == TicketStatus.ASSIGNED
    return {
        "pane_ticket": ticket,
        "conversation": conversation,
        "last_message_id": conversation[-1].pk if conversation else 0,
        "pay": offer,
        "can_post": assigned,
        "can_resolve": assigned,
        "can_tag": ticket.status
        in (TicketStatus.ASSIGNED, TicketStatus.RESOLVED, TicketStatus.CLOSED),
        "feedback_kinds": FeedbackKind.choices,
        "feedback_max": FEEDBACK_TEXT_MAX,
        "message_max": MESSAGE_MAX,
        "feedback_sent": ticket.feedback.filter(agent=agent).order_by("-created_at")[:3],
    }


def _tickets(agent: Agent):
    mine = Ticket.objects.select_related("customer").filter(assigned_agent=agent)
    active = list(mine.filter(status=TicketStatus.ASSIGNED).order_by("assigned_at", "id"))
    recent = list(
        mine.filter(status__in=(TicketStatus.RESOLVED, TicketStatus.CLOSED)).order_by(
            "-resolved_at", "-id"
        )[:RECENT_RESOLVED]
    )
    return active, recent


@login_required
def console(request):
    agent = _approved_agent_or_redirect(request)
    if agent is None:
        return _elsewhere(request)
    active, recent = _tickets(agent)
    selected = None
    wanted = params.integer(request.GET, "ticket")
    if wanted is not None:
        selected = next((t for t in active + recent if t.pk == wanted), None)
        if selected is None:
            selected = Ticket.objects.filter(pk=wanted, assigned_agent=agent).first()
    if selected is None and active:
        selected = active[0]
    context = {
        "agent": agent,
        "presences": Presence.choices,
        "offers": selectors.agent_pending_offers(agent=agent),
        "decline_reasons": decline_reasons(),
        "active": active,
        "recent": recent,
        "quality": ticket_selectors.agent_quality(agent=agent),
        "record": marketplace_selectors.attendance_record(agent=agent),
        "next_shift": marketplace_selectors.agent_bookings(agent=agent, upcoming=True).first(),
        "surge": pricing_services.surge_now(),
        **pay_views.earnings_card_context(agent),
        **_pane_context(request, agent, selected),
    }
    return render(request, "agents/console.html", context)


@login_required
def console_pane(request, ticket_id: int):
    """The conversation pane alone (htmx swaps it in); a full page for everyone else."""
    agent = _agent(request)
    ticket = _my_ticket(request, agent, ticket_id)
    if not request.htmx:
        return redirect(f"{reverse('agent-console')}?ticket={ticket.pk}")
    return render(request, "agents/_pane.html", _pane_context(request, agent, ticket))


@login_required
@require_POST
def console_presence(request):
    agent = _agent(request)
    try:
        agent = presence_services.agent_presence_set(
            agent_id=agent.pk, status=request.POST.get("status", "")
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    if request.htmx:
        return render(
            request,
            "agents/_presence.html",
            {"agent": agent, "presences": Presence.choices},
        )
    return redirect("agent-console")


@login_required
@require_POST
def console_offer(request, offer_id: int, answer: str):
    """The no-JavaScript way to answer an offer (the page uses the socket, then the API)."""
    _agent(request)
    action = {"accept": dispatch.offer_accept, "decline": dispatch.offer_decline}.get(answer)
    if action is None:
        raise Http404
    given = {"offer_id": offer_id, "user": request.user}
    if answer == "decline":
        given["reason"] = request.POST.get("reason", "")
    try:
        offer = action(**given)
    except Offer.DoesNotExist as exc:
        raise Http404 from exc
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("agent-console")
    if offer.status == OfferStatus.ACCEPTED:
        messages.success(request, _("Ticket accepted. The customer has been told you joined."))
        return redirect(f"{reverse('agent-console')}?ticket={offer.ticket_id}")
    messages.info(request, _("Offer declined; it goes to the next agent."))
    return redirect("agent-console")


def _post_message(request, ticket: Ticket) -> str:
    ticket_services.message_post(
        ticket_id=ticket.pk, caller=request.user, body=request.POST.get("body", "")
    )
    return ""


def _resolve(request, ticket: Ticket) -> str:
    ticket_services.ticket_resolve(ticket_id=ticket.pk, caller=request.user)
    return _("Resolved. The customer can now rate the help.")


def _feedback(request, ticket: Ticket) -> str:
    ticket_services.feedback_tag(
        ticket_id=ticket.pk,
        caller=request.user,
        area=request.POST.get("area", ""),
        kind=request.POST.get("kind", ""),
        text=request.POST.get("text", ""),
    )
    return _("Thanks: the product team will see it on the floor.")


TICKET_ACTIONS = {"message": _post_message, "resolve": _resolve, "feedback": _feedback}


@login_required
@require_POST
def console_ticket_action(request, ticket_id: int, action: str):
    handler = TICKET_ACTIONS.get(action)
    if handler is None:
        raise Http404
    agent = _agent(request)
    ticket = _my_ticket(request, agent, ticket_id)
    note, error = "", ""
    try:
        note = handler(request, ticket)
    except DomainError as exc:
        error = exc.message
    if request.htmx:
        ticket.refresh_from_db()
        context = _pane_context(request, agent, ticket)
        context.update(pane_note=note, pane_error=error)
        response = render(request, "agents/_pane.html", context)
        if action == "resolve" and not error:
            # Raised on the body itself (htmx's "target" key), not on the form
            # that posted: the socket's push of the resolve may have swapped
            # the pane (and the form with it) out of the page before this
            # response arrives, and an event raised on a detached form never
            # reaches the earnings card listening on the body.
            response["HX-Trigger"] = json.dumps({"console:ticket-resolved": {"target": "body"}})
        return response
    if error:
        messages.error(request, error)
    elif note:
        messages.success(request, note)
    return redirect(f"{reverse('agent-console')}?ticket={ticket.pk}")
