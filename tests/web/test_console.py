"""The agent console, server-side: who gets in, and every action through the services."""

import json
from decimal import Decimal

import pytest

from agents.models import Presence
from marketplace.models import OfferStatus
from marketplace.services import dispatch
from tests.tickets.factories import HANDOFF, TicketFactory, assigned
from tickets.models import Feedback, Rung, TicketStatus

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_an_approved_agent_sees_the_console(client, agent):
    client.force_login(agent.user)

    page = client.get("/agent/").content.decode()

    assert "Hi Aisha" in page
    assert 'data-testid="presence"' in page and 'data-testid="quality"' in page
    assert 'data-testid="attendance"' in page and 'data-testid="surge"' in page
    assert 'href="/agent/shifts/"' in page and 'href="/agent/earnings/"' in page


def test_an_approved_agent_lands_on_the_console(client, agent):
    client.force_login(agent.user)

    assert client.get("/")["Location"] == "/agent/"


@pytest.mark.parametrize(
    ("persona", "where", "why"),
    [
        ("applicant", "/apply/status/", "opens once your application is approved"),
        ("customer", "/help/", "The agent console is for Humanline agents."),
        ("staff", "/ops/", "this is the operations floor"),
    ],
)
def test_others_are_sent_where_they_belong_with_a_reason(client, request, persona, where, why):
    person = request.getfixturevalue(persona)
    client.force_login(getattr(person, "user", person))

    response = client.get("/agent/", follow=True)

    assert response.redirect_chain[0][0] == where
    assert why in response.content.decode()


def test_signed_out_visitors_are_asked_to_sign_in(client):
    assert client.get("/agent/")["Location"].startswith("/login/")


def test_the_presence_switch_goes_through_the_presence_service(client, agent):
    client.force_login(agent.user)

    response = client.post("/agent/console/presence/", {"status": "online"}, **HTMX)

    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE
    assert 'aria-pressed="true">Online</button>' in response.content.decode()
    assert agent.presence_intervals.filter(ended_at__isnull=True).count() == 1


def test_an_applicant_cannot_use_the_console_actions(client, applicant):
    client.force_login(applicant.user)

    assert client.post("/agent/console/presence/", {"status": "online"}).status_code == 404


def _offered(ticket, agent):
    agent.presence = Presence.ONLINE
    agent.save(update_fields=["presence"])
    return dispatch.offer_make(ticket_id=ticket.pk, agent_id=agent.pk)


def test_an_offer_can_be_accepted_without_javascript(client, agent):
    ticket = TicketFactory(category="payments")
    offer = _offered(ticket, agent)
    client.force_login(agent.user)

    response = client.post(f"/agent/offers/{offer.pk}/accept/")

    assert response["Location"] == f"/agent/?ticket={ticket.pk}"
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assigned_agent_id) == (TicketStatus.ASSIGNED, agent.pk)


@pytest.mark.parametrize("reason", ["not_my_area", "busy", "other"])
def test_an_offer_can_be_declined_without_javascript_with_a_reason(client, agent, reason):
    offer = _offered(TicketFactory(category="payments"), agent)
    client.force_login(agent.user)

    response = client.post(f"/agent/offers/{offer.pk}/decline/", {"reason": reason})

    assert response["Location"] == "/agent/"
    offer.refresh_from_db()
    assert (offer.status, offer.decline_reason) == (OfferStatus.DECLINED, reason)


def test_an_unknown_decline_reason_is_explained_and_the_offer_stays_open(client, agent):
    offer = _offered(TicketFactory(category="payments"), agent)
    client.force_login(agent.user)

    response = client.post(f"/agent/offers/{offer.pk}/decline/", {"reason": "bored"}, follow=True)

    assert "Choose one of: not_my_area, busy, other." in response.content.decode()
    offer.refresh_from_db()
    assert (offer.status, offer.decline_reason) == (OfferStatus.PENDING, "")


def test_the_offer_card_asks_why_before_declining(client, agent):
    offer = _offered(TicketFactory(category="payments"), agent)
    client.force_login(agent.user)

    page = client.get("/agent/").content.decode()

    decline_form = page[page.index(f'action="/agent/offers/{offer.pk}/decline/"') :]
    decline_form = decline_form[: decline_form.index("</form>")]
    assert "<legend>Decline because…</legend>" in decline_form
    for value, label in (("not_my_area", "Not my area"), ("busy", "Busy"), ("other", "Other")):
        assert f'name="reason" value="{value}"' in decline_form
        assert f">{label}</button>" in decline_form
    assert (
        f'aria-describedby="offer-{offer.pk}-not_my_area">Not my area</button>'
        f' <span class="help" id="offer-{offer.pk}-not_my_area">'
        "You won&#x27;t be offered this ticket again.</span>"
    ) in decline_form
    # The live card (agent-console.js) builds the same choice from the same list.
    assert '<script id="decline-reasons" type="application/json">' in page
    assert "It may be offered to you again after 1 min." in page


def test_the_offer_card_shows_a_waiting_bonus_only_when_there_is_one(client, agent):
    waiting = TicketFactory(category="payments", escalation=Rung.WAITING_BONUS)
    offer = _offered(waiting, agent)
    client.force_login(agent.user)

    page = client.get("/agent/").content.decode()

    assert offer.waiting_bonus == Decimal("0.50")
    assert '<span class="bonus-tag" data-testid="waiting-bonus">+€0.50 waiting bonus</span>' in page
    assert f"€{offer.amount}" in page
    dispatch.offer_decline(offer_id=offer.pk, user=agent.user, reason="other")
    _offered(TicketFactory(category="payments"), agent)
    assert 'data-testid="waiting-bonus"' not in client.get("/agent/").content.decode()


def test_another_agents_offer_is_a_404(client, agent, other_agent):
    offer = _offered(TicketFactory(category="payments"), agent)
    client.force_login(other_agent.user)

    assert client.post(f"/agent/offers/{offer.pk}/accept/").status_code == 404
    offer.refresh_from_db()
    assert offer.status == OfferStatus.PENDING


def test_the_pane_shows_the_bot_handoff_before_the_conversation(client, customer, agent):
    ticket = assigned(
        TicketFactory(
            customer=customer,
            handoff_transcript=HANDOFF["transcript"],
            handoff_summary=HANDOFF["summary"],
        ),
        agent,
    )
    client.force_login(agent.user)

    pane = client.get(f"/agent/tickets/{ticket.pk}/", **HTMX).content.decode()

    assert pane.index(HANDOFF["summary"]) < pane.index('aria-label="Conversation"')
    assert "I want a person" in pane
    assert "Mark as resolved" in pane


def test_without_htmx_the_pane_is_the_console_with_that_ticket(client, agent):
    ticket = assigned(TicketFactory(), agent)
    client.force_login(agent.user)

    assert client.get(f"/agent/tickets/{ticket.pk}/")["Location"] == f"/agent/?ticket={ticket.pk}"
    page = client.get(f"/agent/?ticket={ticket.pk}").content.decode()
    assert f'data-ticket="{ticket.pk}"' in page


def test_another_agents_ticket_is_a_404(client, agent, other_agent):
    ticket = assigned(TicketFactory(), agent)
    client.force_login(other_agent.user)

    assert client.get(f"/agent/tickets/{ticket.pk}/", **HTMX).status_code == 404
    assert client.post(f"/agent/tickets/{ticket.pk}/resolve/").status_code == 404
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.ASSIGNED


def test_resolve_and_tag_feedback_from_the_pane(client, agent):
    ticket = assigned(TicketFactory(), agent)
    client.force_login(agent.user)

    resolved = client.post(f"/agent/tickets/{ticket.pk}/resolve/", **HTMX)
    tagged = client.post(
        f"/agent/tickets/{ticket.pk}/feedback/",
        {"area": "Card payments", "kind": "bug", "text": "3-D Secure times out."},
        **HTMX,
    )

    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED
    # Raised on the body: the pane that posted may be gone by then (the push).
    assert json.loads(resolved["HX-Trigger"]) == {"console:ticket-resolved": {"target": "body"}}
    assert "the product team will see it" in tagged.content.decode()
    assert Feedback.objects.get(ticket=ticket).area == "card-payments"


def test_bad_feedback_is_explained_in_the_pane(client, agent):
    ticket = assigned(TicketFactory(), agent)
    client.force_login(agent.user)

    pane = client.post(
        f"/agent/tickets/{ticket.pk}/feedback/", {"area": "", "kind": "bug", "text": "x"}, **HTMX
    ).content.decode()

    assert "Name the product area" in pane
    assert not Feedback.objects.exists()


def test_a_message_posted_without_javascript_returns_to_the_console(client, agent):
    ticket = assigned(TicketFactory(), agent)
    client.force_login(agent.user)

    response = client.post(f"/agent/tickets/{ticket.pk}/message/", {"body": "Hello!"})

    assert response["Location"] == f"/agent/?ticket={ticket.pk}"
    assert ticket.messages.get().body == "Hello!"
