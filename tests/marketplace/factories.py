"""factory_boy factories for shifts, and an offer made the way dispatch makes one."""

from datetime import timedelta

import factory
from django.db.models import F
from django.utils import timezone

from marketplace.models import HOLDING, BookingStatus, ShiftBooking, ShiftSlot
from tests.factories import AgentFactory, StaffFactory


def next_grid_time(after=None, *, days: int = 1):
    """The first 30-minute grid point ``days`` days after ``after`` (default: now)."""
    moment = (after or timezone.now()) + timedelta(days=days)
    moment = moment.replace(second=0, microsecond=0)
    return moment - timedelta(minutes=moment.minute % 30)


class ShiftSlotFactory(factory.django.DjangoModelFactory):
    """A published 30-minute slot tomorrow, three places, no focus, no incentive."""

    class Meta:
        model = ShiftSlot

    starts_at = factory.LazyFunction(next_grid_time)
    ends_at = factory.LazyAttribute(lambda slot: slot.starts_at + timedelta(minutes=30))
    headcount = 3
    created_by = factory.SubFactory(StaffFactory)


class ShiftBookingFactory(factory.django.DjangoModelFactory):
    """A booking written directly (no service): keeps the slot's counter in step."""

    class Meta:
        model = ShiftBooking
        skip_postgeneration_save = True

    slot = factory.SubFactory(ShiftSlotFactory)
    agent = factory.SubFactory(AgentFactory)
    status = BookingStatus.BOOKED
    starts_at = factory.LazyAttribute(lambda booking: booking.slot.starts_at)
    ends_at = factory.LazyAttribute(lambda booking: booking.slot.ends_at)

    @factory.post_generation
    def _count(obj, create, extracted, **kwargs):
        if create and obj.status in HOLDING:
            ShiftSlot.objects.filter(pk=obj.slot_id).update(booked_count=F("booked_count") + 1)


def offer_to_online(agent):
    """The offer dispatch makes ``agent``, put online, of a new English ticket in
    ``general`` (one pass, as the sweep would run)."""
    from agents import presence
    from agents.models import Presence
    from marketplace.models import Offer
    from marketplace.services import dispatch
    from tests.tickets.factories import TicketFactory

    presence.agent_presence_set(agent_id=agent.pk, status=Presence.ONLINE)
    ticket = TicketFactory(category="general", language="en")
    dispatch.dispatch_pass()
    return Offer.objects.get(ticket=ticket, agent=agent)
