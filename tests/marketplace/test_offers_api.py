"""Offers over HTTP and over the agent socket, pricing endpoints, and who may use them."""

from datetime import timedelta

import pytest
import time_machine
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from agents import presence
from agents import services as agent_services
from agents.models import Presence
from config.asgi import application
from marketplace.models import Offer, OfferStatus, PricingEvent
from marketplace.services import dispatch
from tests.factories import AgentFactory
from tests.tickets.factories import TicketFactory, new_ticket_body
from tickets.models import Ticket, TicketStatus


def online_agent(**kwargs):
    agent = AgentFactory(languages=["en"], skills=["payments", "general"], **kwargs)
    presence.agent_presence_set(agent_id=agent.pk, status=Presence.ONLINE)
    return agent


@pytest.fixture
def offered(db):
    """A ticket offered to an online agent: (agent, offer)."""
    agent = online_agent(user__name="Olga Offered")
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    return agent, Offer.objects.get(ticket=ticket)


@pytest.mark.django_db
class TestOffersOverHttp:
    def test_the_offered_agent_accepts(self, api, offered):
        agent, offer = offered
        response = api.as_(agent.user).post(f"/api/v1/offers/{offer.pk}/accept/")
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["status"] == "accepted"
        assert body["pay"] == {"amount": "2.50", "currency": "EUR"}
        assert Ticket.objects.get(pk=offer.ticket_id).status == TicketStatus.ASSIGNED

    def test_a_second_accept_of_the_same_offer_is_a_409(self, api, offered):
        agent, offer = offered
        api.as_(agent.user).post(f"/api/v1/offers/{offer.pk}/accept/")
        response = api.as_(agent.user).post(f"/api/v1/offers/{offer.pk}/accept/")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "offer_accepted"

    def test_accepting_an_expired_offer_is_a_409(self, api, offered):
        agent, offer = offered
        with time_machine.travel(timezone.now() + timedelta(seconds=16)):
            response = api.as_(agent.user).post(f"/api/v1/offers/{offer.pk}/accept/")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "offer_expired"

    def test_accepting_a_withdrawn_offer_is_a_409(self, api, offered):
        agent, offer = offered
        # The agent goes offline, then their offers are withdrawn (as the task does).
        presence.agent_presence_set(agent_id=agent.pk, status=Presence.OFFLINE)
        dispatch.offers_withdraw_for_agent(agent_id=agent.pk, reason="agent_offline")
        offer.refresh_from_db()
        assert offer.status == OfferStatus.WITHDRAWN
        response = api.as_(agent.user).post(f"/api/v1/offers/{offer.pk}/accept/")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "offer_withdrawn"

    def test_another_agents_offer_is_a_404(self, api, offered, other_agent):
        _, offer = offered
        for verb in ("accept", "decline"):
            response = api.as_(other_agent.user).post(f"/api/v1/offers/{offer.pk}/{verb}/")
            assert response.status_code == 404
        offer.refresh_from_db()
        assert offer.status == OfferStatus.PENDING

    def test_customers_and_staff_cannot_answer_offers(self, api, offered, customer, staff):
        _, offer = offered
        for user in (customer, staff):
            assert api.as_(user).post(f"/api/v1/offers/{offer.pk}/accept/").status_code == 403
        assert api.as_(None).post(f"/api/v1/offers/{offer.pk}/accept/").status_code in (401, 403)

    def test_declining_with_a_reason_and_a_note(self, api, offered):
        agent, offer = offered
        response = api.as_(agent.user).post(
            f"/api/v1/offers/{offer.pk}/decline/",
            {"reason": "not_my_area", "note": "Card disputes, not payments"},
        )
        assert response.status_code == 200
        assert response.json()["decline_reason"] == "not_my_area"
        offer.refresh_from_db()
        assert (offer.status, offer.decline_reason, offer.reason) == (
            OfferStatus.DECLINED,
            "not_my_area",
            "Card disputes, not payments",
        )

    def test_an_unknown_decline_reason_is_a_400_naming_the_field(self, api, offered):
        agent, offer = offered
        response = api.as_(agent.user).post(
            f"/api/v1/offers/{offer.pk}/decline/", {"reason": "Not my area"}
        )
        assert response.status_code == 400
        assert "reason" in response.json()["error"]["fields"]
        offer.refresh_from_db()
        assert offer.status == OfferStatus.PENDING  # nothing written

    def test_an_unknown_offer_is_a_404(self, api, agent):
        assert api.as_(agent.user).post("/api/v1/offers/999999/accept/").status_code == 404

    def test_the_agent_lists_their_offers_and_can_filter(self, api, offered):
        agent, offer = offered
        listed = api.as_(agent.user).get("/api/v1/offers/?status=pending").json()
        assert [row["id"] for row in listed] == [offer.pk]
        assert listed[0]["ticket"]["subject"].startswith("My card payment")
        assert api.as_(agent.user).get("/api/v1/offers/?status=nope").status_code == 400

    def test_a_merely_offered_agent_cannot_read_the_ticket_until_they_accept(self, api, offered):
        # The offer is enough to decide; the body, transcript, customer and
        # messages open with the accept.
        agent, offer = offered
        client = api.as_(agent.user)
        assert client.get(f"/api/v1/tickets/{offer.ticket_id}/").status_code == 404
        assert client.get(f"/api/v1/tickets/{offer.ticket_id}/messages/").status_code == 404
        assert offer.ticket_id not in [
            t["id"] for t in client.get("/api/v1/tickets/").json()["results"]
        ]

        client.post(f"/api/v1/offers/{offer.pk}/accept/")

        assert client.get(f"/api/v1/tickets/{offer.ticket_id}/").status_code == 200

    def test_an_ended_offer_keeps_no_customer_text(self, api, offered):
        agent, offer = offered
        api.as_(agent.user).post(f"/api/v1/offers/{offer.pk}/decline/")

        (row,) = api.as_(agent.user).get("/api/v1/offers/").json()

        assert row["status"] == "declined"
        assert (row["ticket"]["subject"], row["ticket"]["summary"], row["ticket"]["intent"]) == (
            None,
            None,
            None,
        )
        assert row["ticket"]["category"] == offer.ticket.category  # the facts stay

    def test_an_accepted_offer_keeps_no_customer_text_once_the_ticket_is_taken_back(
        self, api, offered
    ):
        # The agent took the ticket, then lost it (gone offline, suspended, silent):
        # the ticket is closed to them, and so is its text in their offer list.
        agent, offer = offered
        client = api.as_(agent.user)
        accepted = client.post(f"/api/v1/offers/{offer.pk}/accept/").json()
        assert accepted["ticket"]["subject"].startswith("My card payment")

        dispatch.assignments_return_for_agent(agent_id=agent.pk, reason="Agent went offline.")

        (row,) = [r for r in client.get("/api/v1/offers/").json() if r["id"] == offer.pk]
        assert row["status"] == "accepted"
        assert (row["ticket"]["subject"], row["ticket"]["summary"], row["ticket"]["intent"]) == (
            None,
            None,
            None,
        )
        assert client.get(f"/api/v1/tickets/{offer.ticket_id}/").status_code == 404


@pytest.mark.django_db
def test_opening_a_ticket_pushes_an_offer_with_pay_to_the_agent(
    api, customer, pushes, django_capture_on_commit_callbacks
):
    agent = online_agent()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_(customer).post("/api/v1/tickets/", new_ticket_body())
    assert response.status_code == 201
    created = [m for a, m in pushes if a == agent.pk and m["type"] == "offer.created"]
    assert len(created) == 1
    offer = created[0]["offer"]
    assert offer["pay"] == {"amount": "2.50", "currency": "EUR"}
    assert offer["window_seconds"] == 15
    assert offer["ticket"]["subject"] == "Charged twice"


@pytest.mark.django_db
def test_accepting_tells_the_customer_the_agents_first_name(
    api, offered, monkeypatch, django_capture_on_commit_callbacks
):
    agent, offer = offered
    sent = []
    monkeypatch.setattr("tickets.events.push", lambda ticket_id, event: sent.append(event))
    monkeypatch.setattr("tickets.events.push_many", lambda items: sent.extend(e for _, e in items))
    with django_capture_on_commit_callbacks(execute=True):
        api.as_(agent.user).post(f"/api/v1/offers/{offer.pk}/accept/")
    assigned = [e for e in sent if e["type"] == "ticket.assigned"]
    assert assigned and assigned[0]["agent"]["name"] == "Olga"
    assert any(e["type"] == "ticket.status" and e["status"] == "assigned" for e in sent)


# --- pricing endpoints ----------------------------------------------------------------


@pytest.mark.django_db
def test_surge_is_visible_to_agents_and_staff_only(api, agent, staff, customer):
    assert api.as_(agent.user).get("/api/v1/pricing/surge/").json()["multiplier"] == "1.00"
    assert api.as_(staff).get("/api/v1/pricing/surge/").status_code == 200
    assert api.as_(customer).get("/api/v1/pricing/surge/").status_code == 404


@pytest.mark.django_db
def test_staff_set_the_rate_card_and_it_is_audited(api, staff, agent):
    response = api.as_(staff).post(
        "/api/v1/pricing/rates/", {"category": "refunds", "amount": "2.75"}
    )
    assert response.status_code == 200
    assert response.json()["amount"] == "2.75"
    event = PricingEvent.objects.get()
    assert (event.actor, event.old_amount, str(event.new_amount)) == (staff, 2.5, "2.75")
    rates = {
        r["category"]: r["amount"] for r in api.as_(agent.user).get("/api/v1/pricing/rates/").json()
    }
    assert rates["refunds"] == "2.75"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"category": "astrology", "amount": "2.00"}, "category"),
        ({"category": "refunds", "amount": "0"}, "amount"),
        ({"category": "refunds", "amount": "-1"}, "amount"),
        ({"category": "refunds", "amount": "abc"}, "amount"),
        ({"category": "refunds", "amount": "2", "currency": "E1"}, "currency"),
    ],
)
def test_bad_rates_are_400s_naming_the_field(api, staff, body, field):
    response = api.as_(staff).post("/api/v1/pricing/rates/", body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not PricingEvent.objects.exists()


@pytest.mark.django_db
def test_only_staff_set_rates(api, agent, customer):
    for user in (agent.user, customer):
        response = api.as_(user).post(
            "/api/v1/pricing/rates/", {"category": "refunds", "amount": "9"}
        )
        assert response.status_code == 403


# --- the agent socket ---------------------------------------------------------------

ORIGIN = [(b"origin", b"http://testserver")]


async def _agent_socket(agent):
    value, _ = await database_sync_to_async(agent_services.realtime_ticket_issue)(user=agent.user)
    socket = WebsocketCommunicator(application, f"/ws/agent/?ticket={value}", headers=ORIGIN)
    connected, _ = await socket.connect()
    assert connected
    return socket


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_db_connections")
async def test_an_offer_arrives_on_the_socket_through_redis_and_is_accepted_there():
    agent = await database_sync_to_async(online_agent)()
    socket = await _agent_socket(agent)
    snapshot = await socket.receive_json_from()
    assert snapshot["pending_offers"] == []

    ticket = await database_sync_to_async(TicketFactory)(category="payments")
    await database_sync_to_async(dispatch.dispatch_pass)()
    # dispatch() committed, then pushed offer.created through channels-redis.
    offer = await database_sync_to_async(Offer.objects.get)(ticket=ticket)
    frame = await socket.receive_json_from(timeout=5)
    assert frame["type"] == "offer.created"
    assert frame["offer"]["id"] == offer.pk

    await socket.send_json_to({"type": "offer.accept", "offer_id": offer.pk})
    answer = await socket.receive_json_from(timeout=5)
    while answer["type"] == "ticket.assigned":  # the push may overtake the reply
        answer = await socket.receive_json_from(timeout=5)
    assert answer == {"type": "offer.answered", "offer_id": offer.pk, "status": "accepted"}
    await socket.send_json_to({"type": "offer.accept", "offer_id": offer.pk})
    again = await socket.receive_json_from(timeout=5)
    while again["type"] != "error":
        again = await socket.receive_json_from(timeout=5)
    assert again["error"]["code"] == "offer_accepted"
    await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_db_connections")
async def test_a_reconnecting_agent_finds_pending_offers_and_tickets_in_the_snapshot():
    agent = await database_sync_to_async(online_agent)()
    first = await database_sync_to_async(TicketFactory)(category="payments")
    await database_sync_to_async(dispatch.dispatch_pass)()
    offer = await database_sync_to_async(Offer.objects.get)(ticket=first)
    await database_sync_to_async(dispatch.offer_accept)(offer_id=offer.pk, user=agent.user)
    second = await database_sync_to_async(TicketFactory)(category="payments")
    await database_sync_to_async(dispatch.dispatch_pass)()

    socket = await _agent_socket(agent)
    snapshot = await socket.receive_json_from()
    assert [o["ticket"]["id"] for o in snapshot["pending_offers"]] == [second.pk]
    assert [t["id"] for t in snapshot["assigned_tickets"]] == [first.pk]
    await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_db_connections")
async def test_another_agents_offer_cannot_be_answered_over_the_socket():
    owner = await database_sync_to_async(online_agent)()
    stranger = await database_sync_to_async(online_agent)()
    ticket = await database_sync_to_async(TicketFactory)(category="payments")
    await database_sync_to_async(dispatch.offer_make)(ticket_id=ticket.pk, agent_id=owner.pk)
    offer = await database_sync_to_async(Offer.objects.get)(ticket=ticket)
    socket = await _agent_socket(stranger)
    await socket.receive_json_from()
    await socket.send_json_to({"type": "offer.decline", "offer_id": offer.pk})
    reply = await socket.receive_json_from(timeout=5)
    assert reply["error"]["code"] == "not_found"
    await socket.send_json_to({"type": "offer.accept", "offer_id": "x"})
    assert (await socket.receive_json_from(timeout=5))["error"]["code"] == "invalid"
    # Larger than any id: it overflowed PostgreSQL's bigint and crashed the consumer.
    for crafted in (10**30, -1, True):
        await socket.send_json_to({"type": "offer.accept", "offer_id": crafted})
        assert (await socket.receive_json_from(timeout=5))["error"]["code"] == "invalid"
    await socket.send_json_to({"type": "offer.seen", "offer_id": 10**30})
    assert (await socket.receive_json_from(timeout=5))["error"]["code"] == "invalid"
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=5))["type"] == "pong"
    await socket.disconnect()
