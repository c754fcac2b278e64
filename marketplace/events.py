"""Side effects of marketplace changes, built in one place and run after commit.

Messages for the agent socket are built by the ``*_message`` functions and
sent through ``agents.events.push_to_agent``; e-mails go through Celery.
"""

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from agents import events as agent_events
from marketplace import tasks
from marketplace.models import OfferStatus

logger = logging.getLogger(__name__)


def _iso(value):
    return value.isoformat() if value else None


def booking_message(*, type: str, booking) -> dict:
    slot = booking.slot
    return {
        "type": type,
        "booking": {
            "id": booking.pk,
            "slot_id": slot.pk,
            "status": booking.status,
            "starts_at": _iso(booking.starts_at),
            "ends_at": _iso(booking.ends_at),
            "online_seconds": booking.online_seconds,
        },
    }


def slot_cancelled_message(*, booking) -> dict:
    message = booking_message(type="shift.slot_cancelled", booking=booking)
    message["reason"] = booking.slot.cancel_reason
    return message


# Which message a booking's new status sends.
BOOKING_MESSAGE_TYPES = {
    "booked": "shift.booked",
    "cancelled": "shift.booking_cancelled",
    "late_cancelled": "shift.booking_cancelled",
    "attended": "shift.attendance",
    "no_show": "shift.attendance",
}


def booking_changed(*, booking_id: int) -> None:
    from marketplace.models import ShiftBooking

    booking = ShiftBooking.objects.select_related("slot").get(pk=booking_id)
    agent_events.push_to_agent(
        agent_id=booking.agent_id,
        message=booking_message(type=BOOKING_MESSAGE_TYPES[booking.status], booking=booking),
    )


def slot_cancelled(*, slot_id: int, booking_ids: list[int]) -> None:
    """Tell every released agent at once on their socket (the e-mail is in the outbox)."""
    from marketplace.models import ShiftBooking

    for booking in ShiftBooking.objects.select_related("slot").filter(pk__in=booking_ids):
        agent_events.push_to_agent(
            agent_id=booking.agent_id, message=slot_cancelled_message(booking=booking)
        )


# --- dispatch: what runs on which event ---------------------------------------------------


def ticket_waiting(ticket_id: int, opened=None) -> None:
    """A ticket entered ``queued``: offer it now, or ask for a pass."""
    from marketplace.services import dispatch

    if settings.HUMANLINE["DISPATCH_INLINE"]:
        try:
            if dispatch.offer_new_ticket(ticket_id=ticket_id, opened=opened):
                return
        except Exception:
            # The pass (and the sweep behind it) will offer the ticket.
            logger.exception("offering new ticket %s failed", ticket_id)
    dispatch.pass_request()


def agent_free(*, agent_id: int) -> None:
    """An agent has room for a ticket: they take the first in line, or a pass decides.

    While a pass runs (at saturation they run back to back), the agent joins
    its next round instead of pulling: every agent freed meanwhile then gets
    a ticket from one read of the queue, where their pulls would all reach
    for the same head of the line and all but one lose.  Only when a ticket
    waits past its own fast path: in service a pass may run while agents
    accept, and each accept would otherwise send it round again, passes that
    offer nothing following each other for as long as agents accept.
    """
    from marketplace.services import dispatch

    running = None  # not known: the pull takes time, the pass is looked for after it
    if settings.HUMANLINE["DISPATCH_INLINE"]:
        if dispatch.pass_running():
            if not dispatch.settled_waiting():
                return
            running = True
        else:
            try:
                if dispatch.pull(agent_id=agent_id):
                    return
            except Exception:
                logger.exception("pull for agent %s failed", agent_id)
    dispatch.pass_request(running=running)


def agent_available(*, agent_id: int) -> None:
    """An agent went online: a pass, which sees every ticket waiting, just queued or not."""
    from marketplace.services import dispatch

    dispatch.pass_request()


def agent_unavailable(*, agent_id: int, presence: str) -> None:
    """An agent left ``online``: their pending offers go back to dispatch."""
    tasks.withdraw_offers.delay(agent_id, f"agent_{presence}")


def ticket_cancelled(*, ticket_id: int) -> None:
    tasks.withdraw_ticket_offers.delay(ticket_id)


def routes() -> list[tuple[str, list, Callable]]:
    """What dispatch does on each event: (event, the hooks it arrives by, the handler).

    =====================================  =====================================================
    event                                  dispatch's answer
    =====================================  =====================================================
    a ticket entered the queue (opened,    ``ticket_waiting``: offer it to its best free agent
    requeued after a decline, an expiry    now (``offer_new_ticket``); a pass when tickets that
    or a lost agent; reopened)             waited sit ahead of it in its lane
    an agent's seat was freed (resolve,    ``agent_free``: the agent takes the first ticket in
    requeue)                               line they may take (``pull``); a pass if held
    an offer was accepted                  ``offer_accepted`` (after its commit): tell the agent,
                                           then ``agent_free`` for the seat left
    an agent went online                   ``agent_available``: a pass
    an agent left online                   ``agent_unavailable``: withdraw their offers
    a ticket was cancelled                 ``ticket_cancelled``: withdraw its offer
    an agent was suspended                 ``dispatch.on_suspension``: their tickets go back
    every ``DISPATCH_SWEEP_SECONDS``       ``dispatch.sweep``: expire, reclaim, pass
    =====================================  =====================================================
    """
    from agents import presence
    from agents import services as agent_services
    from marketplace.services import dispatch
    from tickets import events as ticket_events
    from tickets import services as ticket_services

    return [
        ("ticket queued", ticket_events.QUEUED_HOOKS, ticket_waiting),
        ("seat freed", ticket_services.CAPACITY_FREED_HOOKS, agent_free),
        ("agent online", presence.AVAILABILITY_HOOKS, agent_available),
        ("agent left online", presence.UNAVAILABILITY_HOOKS, agent_unavailable),
        ("ticket cancelled", ticket_services.CANCELLED_HOOKS, ticket_cancelled),
        ("agent suspended", agent_services.SUSPENSION_HOOKS, dispatch.on_suspension),
    ]


def shows_customer_text(offer) -> bool:
    """Whether an offer's agent may still read the customer's words in it.

    The offer they are deciding on, and the one they took while the ticket is
    still theirs (as ``tickets.selectors.tickets_visible_to`` lets them read
    it).  A declined, expired or withdrawn offer, and an accepted one whose
    ticket was taken back (requeued, reopened, given to another agent), keep
    only the facts of the ticket, no text of the customer's.
    """
    if offer.status == OfferStatus.PENDING:
        return True
    return offer.status == OfferStatus.ACCEPTED and offer.ticket.assigned_agent_id == offer.agent_id


def ticket_summary(ticket, *, with_text: bool = True) -> dict:
    """What an agent sees of a ticket before taking it: enough to decide, no more.

    Without ``with_text``: the subject, summary and intent are null.
    """
    now = timezone.now()
    return {
        "id": ticket.pk,
        "subject": ticket.subject if with_text else None,
        "summary": (ticket.handoff_summary or ticket.body)[:280] if with_text else None,
        "intent": ticket.handoff_intent if with_text else None,
        "category": ticket.category,
        "language": ticket.language,
        "priority": ticket.priority,
        "handoff": bool(ticket.handoff_transcript or ticket.handoff_summary),
        "waiting_seconds": int((now - ticket.queued_at).total_seconds()) if ticket.queued_at else 0,
    }


def money(amount, currency) -> dict:
    return {"amount": f"{amount:.2f}", "currency": currency}


def offer_payload(offer) -> dict:
    return {
        "id": offer.pk,
        "status": offer.status,
        "pay": money(offer.amount, offer.currency),
        "base": money(offer.base_amount, offer.currency),
        "surge_multiplier": f"{offer.surge_multiplier:.2f}",
        "waiting_bonus": money(offer.waiting_bonus, offer.currency),
        "created_at": _iso(offer.created_at),
        "expires_at": _iso(offer.expires_at),
        "seen_at": _iso(offer.seen_at),
        "window_seconds": int((offer.expires_at - offer.created_at).total_seconds()),
        "decline_reason": offer.decline_reason or None,
        "ticket": ticket_summary(offer.ticket, with_text=shows_customer_text(offer)),
    }


def offer_created_message(offer) -> dict:
    return {"type": "offer.created", "offer": offer_payload(offer)}


def offer_ended_message(offer) -> dict:
    # offer.expired or offer.withdrawn
    return {
        "type": f"offer.{offer.status}",
        "offer_id": offer.pk,
        "ticket_id": offer.ticket_id,
        "reason": offer.reason,
    }


def assigned_ticket_payload(ticket) -> dict:
    payload = ticket_summary(ticket)
    payload.update(
        {
            "status": ticket.status,
            "assigned_at": _iso(ticket.assigned_at),
            "customer": {"name": ticket.customer.first_name},
            "handoff_transcript": ticket.handoff_transcript,
            "handoff_summary": ticket.handoff_summary,
        }
    )
    return payload


def ticket_assigned_message(offer) -> dict:
    return {
        "type": "ticket.assigned",
        "offer_id": offer.pk,
        "pay": money(offer.amount, offer.currency),
        "ticket": assigned_ticket_payload(offer.ticket),
    }


def _offer(offer_id: int):
    from marketplace.models import Offer

    return Offer.objects.select_related("ticket__customer").get(pk=offer_id)


# Per process: the seconds an expiry task is known to be scheduled for (by any
# process: the Redis key outlives the second).  Spares a round trip per offer.
# Request threads share it: a lock around changes and the pruning's look.
_expiry_seconds: set[int] = set()
_expiry_lock = threading.Lock()


def expiry_memo_clear() -> None:
    with _expiry_lock:
        _expiry_seconds.clear()


def _schedule_expiry(expires_at) -> None:
    """One expiry task per second of expiry times: precise enough, never a flood.

    The sweep is the safety net (and the only path when tasks run eagerly).
    """
    from django.core.cache import cache

    second = int(expires_at.timestamp()) + 1
    if second in _expiry_seconds:
        return
    if cache.add(f"offers-expire:{second}", 1, timeout=120):
        countdown = max(second - timezone.now().timestamp(), 0) + 0.05
        tasks.expire_offers.apply_async(countdown=countdown)
    # Scheduled now or before: either way the key stands for the second.
    now = int(timezone.now().timestamp())
    with _expiry_lock:
        _expiry_seconds.difference_update([s for s in _expiry_seconds if s < now])
        _expiry_seconds.add(second)


def offer_created(*, offer_id: int) -> None:
    offer = _offer(offer_id)
    agent_events.push_to_agent(agent_id=offer.agent_id, message=offer_created_message(offer))
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        _schedule_expiry(offer.expires_at)


def offers_made(*, offers: list) -> None:
    """Push each new offer to its agent (built from the rows just written, tickets
    included: no query), and schedule one expiry task for the batch."""
    agent_events.push_many_to_agents(
        [(offer.agent_id, offer_created_message(offer)) for offer in offers]
    )
    if offers and not settings.CELERY_TASK_ALWAYS_EAGER:
        _schedule_expiry(max(o.expires_at for o in offers))


def offer_ended(*, offer_id: int) -> None:
    offer = _offer(offer_id)
    agent_events.push_to_agent(agent_id=offer.agent_id, message=offer_ended_message(offer))


def just_queued() -> timedelta:
    """How long a ticket that entered the queue is left to its own fast path.

    Within it the request that queued the ticket is offering it to its best
    agent (or has asked for a pass): a freed agent does not pull it
    (``dispatch.pull``), and a new ticket does not wait behind it.
    ``DISPATCH_PULL_AFTER_MS``.
    """
    return timedelta(milliseconds=settings.HUMANLINE["DISPATCH_PULL_AFTER_MS"])


def offer_accepted(*, offer) -> None:
    """Tell the agent the ticket is theirs; then they may take another if they have room.

    ``offer`` is the accepted offer as committed, its ticket (with the
    customer) loaded: built from memory, no query.
    """
    agent_events.push_to_agent(agent_id=offer.agent_id, message=ticket_assigned_message(offer))
    agent_free(agent_id=offer.agent_id)


def assignment_lost(*, ticket_id: int, agent_id: int, reason: str) -> None:
    agent_events.push_to_agent(
        agent_id=agent_id,
        message={
            "type": "ticket.status",
            "ticket_id": ticket_id,
            "status": "queued",
            "reason": reason,
        },
    )
