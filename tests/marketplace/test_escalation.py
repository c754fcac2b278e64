"""The escalation ladder of a ticket that waits past its target: the rungs and when each is
reached, the waiting bonus, the wider pool, staff told why, the customer told honestly and
their switch of language."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from agents.models import Agent, Presence
from marketplace.models import LedgerEntry, Offer, OfferStatus
from marketplace.services import dispatch, escalation
from tests.factories import AgentFactory
from tests.marketplace.test_dispatch import go_online, offer_for
from tests.tickets.factories import TicketFactory
from tickets import services as ticket_services
from tickets.models import EventKind, Rung, Ticket, TicketEvent, TicketStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def policy(settings):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "WAIT_TARGET_SECONDS": "urgent:30,high:60,normal:120",
        "ESCALATION_LADDER": "waiting_bonus:1,staff_alert:1,customer_notice:1,wider_pool:2",
        "WAITING_BONUS_STEP": "0.50",
        "WAITING_BONUS_CAP": "2.00",
        "REOFFER_COOLDOWN_SECONDS": 60,
    }


def escalations(ticket) -> list[str]:
    return list(
        TicketEvent.objects.filter(ticket=ticket, kind=EventKind.ESCALATION)
        .order_by("id")
        .values_list("reason", flat=True)
    )


def sweep_at(moment):
    with time_machine.travel(moment, tick=False):
        return dispatch.sweep()


# --- when ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "waited", "rung"),
    [
        ("normal", 119, Rung.NONE),
        ("normal", 120, Rung.CUSTOMER_NOTICE),
        ("normal", 239, Rung.CUSTOMER_NOTICE),
        ("normal", 240, Rung.WIDER_POOL),
        ("high", 60, Rung.CUSTOMER_NOTICE),
        ("urgent", 29, Rung.NONE),
        ("urgent", 30, Rung.CUSTOMER_NOTICE),
        ("urgent", 60, Rung.WIDER_POOL),
    ],
)
def test_the_rung_reached_follows_the_priority_target_and_the_ladder(priority, waited, rung):
    now = timezone.now()
    reached = escalation.rung_due(
        priority=priority, queued_at=now - timedelta(seconds=waited), now=now
    )
    assert reached == rung


def test_a_ticket_climbs_each_rung_once_with_an_audited_reason(db):
    start = timezone.now()
    ticket = TicketFactory(language="mt", queued_at=start)

    assert sweep_at(start + timedelta(seconds=119))["escalated"] == 0
    assert escalations(ticket) == []

    assert sweep_at(start + timedelta(seconds=121))["escalated"] == 1
    ticket.refresh_from_db()
    assert ticket.escalation == Rung.CUSTOMER_NOTICE
    bonus, staff, customer = escalations(ticket)
    assert bonus.startswith("Waited past its target of 120 s: each new offer pays 0.50 EUR more")
    assert staff == "Staff alerted: No agent is online."
    assert customer.startswith("Customer told: No agent is online right now.")

    assert sweep_at(start + timedelta(seconds=130))["escalated"] == 0  # each rung once
    assert sweep_at(start + timedelta(seconds=241))["escalated"] == 1
    assert escalations(ticket)[-1].startswith("Wider pool: agents with the general skill")
    event = TicketEvent.objects.filter(ticket=ticket).latest("id")
    assert (event.from_status, event.to_status) == (TicketStatus.QUEUED, TicketStatus.QUEUED)


def test_a_ticket_no_longer_waiting_does_not_climb(db):
    start = timezone.now()
    ticket = TicketFactory(queued_at=start, status=TicketStatus.CANCELLED)
    assert sweep_at(start + timedelta(minutes=10))["escalated"] == 0
    assert escalations(ticket) == []


def test_reopening_puts_the_ticket_back_at_the_foot_of_the_ladder(agent, customer):
    ticket = TicketFactory(customer=customer, category="payments")
    Ticket.objects.filter(pk=ticket.pk).update(escalation=Rung.WIDER_POOL)
    ticket_services.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)
    ticket_services.ticket_resolve(ticket_id=ticket.pk, caller=agent.user)

    ticket_services.ticket_reopen(ticket_id=ticket.pk, caller=customer)

    ticket.refresh_from_db()
    assert ticket.escalation == Rung.NONE


def test_a_ladder_that_does_not_climb_in_order_stops_the_start(settings):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "ESCALATION_LADDER": "waiting_bonus:2,staff_alert:1,customer_notice:1,wider_pool:2",
    }
    with pytest.raises(SystemCheckError, match="ESCALATION_LADDER"):
        call_command("check")
    settings.HUMANLINE = {**settings.HUMANLINE, "WAIT_TARGET_SECONDS": "urgent:30"}
    with pytest.raises(SystemCheckError, match="WAIT_TARGET_SECONDS"):
        call_command("check")


# --- a. the waiting bonus ---------------------------------------------------------------


def test_each_new_offer_of_a_ticket_past_target_pays_a_step_more_up_to_the_cap(db):
    agents = [AgentFactory(languages=["en"], skills=["payments"]) for _ in range(6)]
    go_online(*agents)
    start = timezone.now()
    ticket = TicketFactory(category="payments", queued_at=start)
    offered = []
    moment = start
    for n in range(6):
        if n == 1:
            moment = start + timedelta(seconds=121)  # past the target: the ladder's first rung
            sweep_at(moment)
            ticket.refresh_from_db()
        with time_machine.travel(moment, tick=False):
            dispatch.dispatch_pass()
            offer = offer_for(ticket)
            dispatch.offer_decline(offer_id=offer.pk, user=offer.agent.user)
        offered.append(offer)
        moment += timedelta(seconds=1)

    assert [o.waiting_bonus for o in offered] == [
        Decimal(x) for x in ("0.00", "0.50", "1.00", "1.50", "2.00", "2.00")
    ]
    for o in offered:
        assert o.amount == o.base_amount * o.surge_multiplier + o.waiting_bonus


def test_the_bonus_is_locked_into_the_offer_shown_and_paid_with_the_task(
    paula, pushes, django_capture_on_commit_callbacks
):
    start = timezone.now()
    ticket = TicketFactory(category="payments", queued_at=start - timedelta(seconds=200))
    Ticket.objects.filter(pk=ticket.pk).update(escalation=Rung.WAITING_BONUS)

    with django_capture_on_commit_callbacks(execute=True):
        dispatch.dispatch_pass()
    offer = offer_for(ticket)
    pushed = next(m for _, m in pushes if m["type"] == "offer.created")
    assert pushed["offer"]["waiting_bonus"] == {"amount": "0.50", "currency": "EUR"}
    assert pushed["offer"]["pay"] == {"amount": "3.00", "currency": "EUR"}  # 2.50 + 0.50

    dispatch.offer_accept(offer_id=offer.pk, user=paula.user)
    ticket_services.ticket_resolve(ticket_id=ticket.pk, caller=paula.user)

    entry = LedgerEntry.objects.get(agent=paula, kind="task")
    assert entry.amount == Decimal("3.00")


# --- b. the wider pool -----------------------------------------------------------------


def test_the_wider_pool_lets_a_generalist_take_it_while_the_specialist_is_busy(db):
    specialist = AgentFactory(languages=["en"], skills=["disputes"], capacity=1)
    generalist = AgentFactory(languages=["en"], skills=["general"])
    go_online(specialist, generalist)
    Agent.objects.filter(pk=specialist.pk).update(active_tickets=1)  # busy, but online
    start = timezone.now()
    ticket = TicketFactory(category="disputes", queued_at=start)

    assert sweep_at(start + timedelta(seconds=121))["offered"] == 0  # waits for the specialist
    assert sweep_at(start + timedelta(seconds=241))["offered"] == 1  # the wider pool opens

    assert offer_for(ticket).agent == generalist


def test_in_the_wider_pool_a_specialist_still_comes_before_a_generalist(db):
    generalist = AgentFactory(languages=["en"], skills=["general"])
    specialist = AgentFactory(languages=["en"], skills=["disputes"])
    go_online(generalist, specialist)
    Agent.objects.filter(pk=specialist.pk).update(active_tickets=1, capacity=3)  # R3 says worse
    ticket = TicketFactory(category="disputes")
    Ticket.objects.filter(pk=ticket.pk).update(escalation=Rung.WIDER_POOL)

    dispatch.dispatch_pass()

    assert offer_for(ticket).agent == specialist  # R2: the exact skill first


# --- c. staff are told why -------------------------------------------------------------


def test_staff_see_the_tickets_past_target_each_with_why_nobody_takes_it(paula):
    from marketplace import floor

    now = timezone.now()
    maltese = TicketFactory(
        language="mt", subject="Card blocked", queued_at=now - timedelta(seconds=300)
    )
    passed_on = TicketFactory(category="payments", queued_at=now - timedelta(seconds=200))
    within = TicketFactory(category="payments", queued_at=now - timedelta(seconds=10))
    Offer.objects.create(
        ticket=passed_on,
        agent=paula,
        status=OfferStatus.DECLINED,
        base_amount=1,
        surge_multiplier=1,
        amount=1,
        currency="EUR",
        created_at=now - timedelta(seconds=30),
        expires_at=now - timedelta(seconds=15),
        answered_at=now - timedelta(seconds=20),
    )

    figures = floor.floor_now(now=now)

    assert figures.past_target_count == 2
    listed = {t.id: t for t in figures.past_target}
    assert set(listed) == {maltese.pk, passed_on.pk}
    assert within.pk not in listed
    assert listed[maltese.pk].reason == "No agent online speaks Maltese (mt)."
    assert listed[maltese.pk].reason_code == "language_unserved"
    assert listed[passed_on.pk].reason == "1 eligible agent passed on it; next round in 41 s."


def test_the_floor_says_which_agents_said_not_my_area(paula):
    from marketplace import floor

    now = timezone.now()
    ticket = TicketFactory(category="payments", queued_at=now - timedelta(seconds=200))
    Offer.objects.create(
        ticket=ticket,
        agent=paula,
        status=OfferStatus.DECLINED,
        decline_reason="not_my_area",
        base_amount=1,
        surge_multiplier=1,
        amount=1,
        currency="EUR",
        created_at=now - timedelta(seconds=30),
        expires_at=now - timedelta(seconds=15),
        answered_at=now - timedelta(seconds=20),
    )

    figures = floor.floor_now(now=now)

    (shown,) = figures.past_target
    assert shown.reason == (
        "1 eligible agent passed on it (1 said it is not their area); none will take it."
    )
    assert figures.declined_not_my_area_last_hour == 1


def test_the_floor_api_lists_the_tickets_past_target(api, staff):
    TicketFactory(language="mt", queued_at=timezone.now() - timedelta(seconds=500))

    body = api.as_(staff).get("/api/v1/admin/floor/").json()

    assert body["past_target_count"] == 1
    assert body["past_target"][0]["reason_code"] == "no_agent_online"
    assert body["wait_targets"] == {"urgent": 30, "high": 60, "normal": 120}


# --- d. the customer is told honestly, and may switch language -------------------------


def test_the_customer_is_told_nobody_speaks_their_language_and_which_languages_are_served(
    api, customer, paula, pushes, django_capture_on_commit_callbacks, monkeypatch
):
    from tickets import events as ticket_events

    told = []
    monkeypatch.setattr(ticket_events, "push_many", told.extend)
    start = timezone.now()
    ticket = TicketFactory(customer=customer, language="mt", category="payments", queued_at=start)
    assert api.as_(customer).get(f"/api/v1/tickets/{ticket.pk}/").json()["waiting_reason"] is None

    with django_capture_on_commit_callbacks(execute=True):
        sweep_at(start + timedelta(seconds=121))

    body = api.as_(customer).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert body["waiting_reason"]["code"] == "language_unserved"
    assert body["waiting_reason"]["languages"] == ["en"]
    assert body["waiting_reason"]["message"] == (
        "Nobody who speaks Maltese is online right now."
        " You can continue in English and keep your place in line."
    )
    waiting = [event for _, event in told if event["type"] == "ticket.waiting"]
    assert [w["waiting_reason"]["code"] for w in waiting] == ["language_unserved"]


def test_switching_language_keeps_the_place_in_line_and_finds_an_agent(
    api, customer, paula, django_capture_on_commit_callbacks
):
    now = timezone.now()
    older = TicketFactory(category="payments", queued_at=now - timedelta(minutes=10))
    mine = TicketFactory(
        customer=customer, language="mt", category="payments", queued_at=now - timedelta(minutes=5)
    )
    younger = TicketFactory(category="payments", queued_at=now - timedelta(minutes=1))
    Agent.objects.filter(pk=paula.pk).update(presence=Presence.AWAY)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_(customer).post(
            f"/api/v1/tickets/{mine.pk}/language/", {"language": "en"}, format="json"
        )

    assert response.status_code == 200
    body = response.json()
    assert body["language"] == "en"
    assert body["queue_position"] == 2  # behind the older one, ahead of the younger one
    mine.refresh_from_db()
    assert mine.queued_at == now - timedelta(minutes=5)
    event = TicketEvent.objects.filter(ticket=mine).latest("id")
    assert (event.kind, event.actor_id) == (EventKind.LANGUAGE, customer.pk)
    assert event.reason == "Language changed from mt to en."
    assert older.pk < younger.pk  # both still there, in their lane

    with django_capture_on_commit_callbacks(execute=True):
        Agent.objects.filter(pk=paula.pk).update(presence=Presence.ONLINE)
        dispatch.dispatch_pass()
    assert offer_for(older).agent == paula  # first in line first


@pytest.mark.parametrize(
    ("language", "status_code", "field"),
    [("xx", 400, "language"), ("mt", 400, "language"), ("", 400, "language")],
)
def test_a_bad_language_is_a_400_naming_the_field(api, customer, language, status_code, field):
    ticket = TicketFactory(customer=customer, language="mt")

    response = api.as_(customer).post(
        f"/api/v1/tickets/{ticket.pk}/language/", {"language": language}, format="json"
    )

    assert response.status_code == status_code
    assert field in response.json()["error"]["fields"]
    ticket.refresh_from_db()
    assert ticket.language == "mt"


def test_the_language_of_a_ticket_being_offered_cannot_change(api, customer, paula):
    ticket = TicketFactory(customer=customer, category="payments")
    dispatch.dispatch_pass()

    response = api.as_(customer).post(
        f"/api/v1/tickets/{ticket.pk}/language/", {"language": "pt"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_queued"


def test_only_the_tickets_customer_may_switch_its_language(api, customer, other_customer, agent):
    ticket = TicketFactory(customer=customer, language="mt")
    url = f"/api/v1/tickets/{ticket.pk}/language/"

    assert api.as_(other_customer).post(url, {"language": "en"}, format="json").status_code == 404
    assert api.as_(agent.user).post(url, {"language": "en"}, format="json").status_code == 404
    assert api.as_(None).post(url, {"language": "en"}, format="json").status_code in (401, 403)
    ticket.refresh_from_db()
    assert ticket.language == "mt"


@pytest.mark.parametrize(
    ("code", "name"),
    [("en", "English"), ("mt", "Maltese"), ("el", "Greek"), ("ne", "Nepali"), ("sw", "Swahili")],
)
def test_languages_are_named_as_people_say_them(code, name):
    assert escalation.language_name(code) == name


def test_the_customer_is_offered_every_language_served_with_an_or(customer):
    french = AgentFactory(languages=["fr"], skills=["payments"])
    english = AgentFactory(languages=["en"], skills=["general"])
    go_online(french, english)
    ticket = TicketFactory(customer=customer, language="mt", category="payments")

    why = escalation.waiting_reason(ticket)

    assert sorted(why.languages) == ["en", "fr"]
    assert "You can continue in English or French and keep your place in line." in why.customer or (
        "You can continue in French or English and keep your place in line." in why.customer
    )


def test_explaining_many_tickets_reads_each_lane_once(paula, django_assert_max_num_queries):
    """The floor and the ladder explain many tickets: the rules are read per lane."""
    now = timezone.now()
    maltese = [
        TicketFactory(language="mt", queued_at=now - timedelta(seconds=300 + n)) for n in range(8)
    ]
    english = [
        TicketFactory(category="payments", queued_at=now - timedelta(seconds=200 + n))
        for n in range(8)
    ]
    for ticket in english[:3]:  # Paula passed on these three: nobody else could take them
        Offer.objects.create(
            ticket=ticket,
            agent=paula,
            status=OfferStatus.DECLINED,
            base_amount=1,
            surge_multiplier=1,
            amount=1,
            currency="EUR",
            created_at=now - timedelta(seconds=30),
            expires_at=now - timedelta(seconds=15),
            answered_at=now - timedelta(seconds=20),
        )

    # Maltese: the lane's rules, the languages served; English: the lane's rules, its
    # free agents, their passes; then one look at each ticket everyone passed on.
    with django_assert_max_num_queries(2 + 3 + 3):
        reasons = escalation.waiting_reasons([*maltese, *english], now=now)

    assert {reasons[t.pk].code for t in maltese} == {"language_unserved"}
    assert [reasons[t.pk].code for t in english] == ["all_passed"] * 3 + ["next_pass"] * 5


def test_the_waiting_reason_is_told_in_the_readers_language(
    api, customer, paula, django_capture_on_commit_callbacks, monkeypatch
):
    from tickets import events as ticket_events

    told = []
    monkeypatch.setattr(ticket_events, "push_many", told.extend)
    customer.language = "fr"
    customer.save(update_fields=["language"])
    start = timezone.now()
    ticket = TicketFactory(customer=customer, language="mt", category="payments", queued_at=start)

    with django_capture_on_commit_callbacks(execute=True):
        sweep_at(start + timedelta(seconds=121))

    # Pushed by the sweep, which has no language of its own: in the customer's.
    (pushed,) = [e["waiting_reason"] for _, e in told if e["type"] == "ticket.waiting"]
    assert pushed["message"] == (
        "Personne qui parle maltais n'est en ligne pour le moment."
        " Vous pouvez continuer en anglais et garder votre place dans la file."
    )
    # Read through the API: in the language the client asks for.
    body = api.as_(customer).get(f"/api/v1/tickets/{ticket.pk}/", HTTP_ACCEPT_LANGUAGE="de").json()
    assert body["waiting_reason"]["message"].startswith("Gerade ist niemand online, der Maltesisch")


def test_a_booking_refusal_is_in_the_agents_language(api, paula):
    from tests.marketplace.factories import ShiftSlotFactory

    slot = ShiftSlotFactory(language="mt")

    response = api.as_(paula).post(f"/api/v1/shifts/{slot.pk}/book/", HTTP_ACCEPT_LANGUAGE="sv")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "language_mismatch"
    assert response.json()["error"]["message"] == "Det här passet är för agenter som talar ”mt”."
