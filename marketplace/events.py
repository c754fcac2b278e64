"""Side effects of marketplace changes, built in one place and run after commit.

Messages for the agent socket are built by the ``*_message`` functions and
sent through ``agents.events.push_to_agent``; e-mails go through Celery.
"""

from agents import events as agent_events
from marketplace import tasks


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
    """Tell every released agent at once on their socket, and by e-mail."""
    from marketplace.models import ShiftBooking

    for booking in ShiftBooking.objects.select_related("slot").filter(pk__in=booking_ids):
        agent_events.push_to_agent(
            agent_id=booking.agent_id, message=slot_cancelled_message(booking=booking)
        )
        tasks.send_slot_cancelled_email.delay(booking.pk)


def agent_available(*, agent_id: int) -> None:
    """Hook point: an agent just became available for work (went online).

    Registered in ``agents.presence.AVAILABILITY_HOOKS`` and called after
    commit.  Dispatch (issue 5) plugs in here to offer the oldest queued
    ticket the agent is eligible for; capacity freeing will call it too.
    Until then it deliberately does nothing.
    """
    return None
