"""Delivery you can trust: the console acknowledges each offer it shows (``offer.seen``),
a lost push is repaired by a resync, and only offers seen and left to expire set an agent
away."""

from datetime import timedelta

import pytest
import time_machine
from channels.db import database_sync_to_async
from django.utils import timezone

from agents.models import Presence
from marketplace.models import Offer
from marketplace.services import dispatch
from tests.marketplace.test_dispatch import offer_for
from tests.marketplace.test_offers_api import _agent_socket, online_agent
from tests.tickets.factories import TicketFactory


def expire_three(agent, *, seen: bool):
    """Three offers in a row, each left to expire; acknowledged by the console or not."""
    start = timezone.now()
    for round_ in range(3):
        ticket = TicketFactory(category="payments")
        with time_machine.travel(start + timedelta(seconds=20 * round_), tick=False):
            dispatch.dispatch_pass()
            if seen:
                dispatch.offer_seen(offer_id=offer_for(ticket).pk, user=agent.user)
        with time_machine.travel(start + timedelta(seconds=20 * round_ + 16), tick=False):
            assert dispatch.offers_expire_overdue() == 1
    agent.refresh_from_db()


@pytest.mark.django_db
def test_three_offers_seen_and_left_to_expire_set_the_agent_away(paula):
    expire_three(paula, seen=True)
    assert paula.presence == Presence.AWAY


@pytest.mark.django_db
def test_offers_never_seen_do_not_set_the_agent_away(paula):
    """The pushes may have been lost on the way: no fault of the agent's."""
    expire_three(paula, seen=False)
    assert (paula.presence, paula.expired_streak) == (Presence.ONLINE, 0)


@pytest.mark.django_db
def test_seeing_an_offer_is_recorded_once(paula):
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    offer = offer_for(ticket)

    first = dispatch.offer_seen(offer_id=offer.pk, user=paula.user).seen_at
    with time_machine.travel(timezone.now() + timedelta(seconds=3)):
        again = dispatch.offer_seen(offer_id=offer.pk, user=paula.user).seen_at

    assert first is not None and again == first


@pytest.mark.django_db
def test_the_api_takes_the_acknowledgement_from_the_offered_agent_only(api, paula, agent):
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    offer = offer_for(ticket)
    url = f"/api/v1/offers/{offer.pk}/seen/"

    assert api.as_(agent.user).post(url).status_code == 404
    assert Offer.objects.get(pk=offer.pk).seen_at is None
    response = api.as_(paula.user).post(url)
    assert response.status_code == 200
    assert response.json()["seen_at"] is not None


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_db_connections")
async def test_an_offer_whose_push_was_lost_reaches_the_agent_by_resync(monkeypatch):
    from agents import events as agent_events

    agent = await database_sync_to_async(online_agent)()
    socket = await _agent_socket(agent)
    assert (await socket.receive_json_from())["pending_offers"] == []
    dropped = []
    sent = agent_events.push_many_to_agents

    def lose_offers(items):
        # Redis lost the message: offer.created never reaches the socket.
        dropped.extend(m for _, m in items if m["type"] == "offer.created")
        sent([(a, m) for a, m in items if m["type"] != "offer.created"])

    monkeypatch.setattr(agent_events, "push_many_to_agents", lose_offers)
    ticket = await database_sync_to_async(TicketFactory)(category="payments")
    await database_sync_to_async(dispatch.dispatch_pass)()
    offer = await database_sync_to_async(Offer.objects.get)(ticket=ticket)
    assert [m["offer"]["id"] for m in dropped] == [offer.pk]
    assert await socket.receive_nothing(timeout=0.2)

    # The console asks for a resync (after a reconnect, or when the tab shows again).
    await socket.send_json_to({"type": "resync"})
    snapshot = await socket.receive_json_from(timeout=5)
    assert [o["id"] for o in snapshot["pending_offers"]] == [offer.pk]
    await socket.send_json_to({"type": "offer.seen", "offer_id": offer.pk})
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=5))["type"] == "pong"  # seen, no error
    await socket.disconnect()

    seen = await database_sync_to_async(Offer.objects.get)(pk=offer.pk)
    assert seen.seen_at is not None


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_db_connections")
async def test_acknowledging_another_agents_offer_is_an_error_and_changes_nothing():
    owner = await database_sync_to_async(online_agent)()
    stranger = await database_sync_to_async(online_agent)()
    ticket = await database_sync_to_async(TicketFactory)(category="payments")
    offer = await database_sync_to_async(dispatch.offer_make)(
        ticket_id=ticket.pk, agent_id=owner.pk
    )
    socket = await _agent_socket(stranger)
    await socket.receive_json_from()

    await socket.send_json_to({"type": "offer.seen", "offer_id": offer.pk})
    reply = await socket.receive_json_from(timeout=5)
    await socket.send_json_to({"type": "offer.seen", "offer_id": "7"})
    invalid = await socket.receive_json_from(timeout=5)
    await socket.disconnect()

    assert reply["error"]["code"] == "not_found"
    assert invalid["error"]["code"] == "invalid"
    assert (await database_sync_to_async(Offer.objects.get)(pk=offer.pk)).seen_at is None
