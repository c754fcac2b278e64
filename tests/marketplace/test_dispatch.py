"""Dispatch: offers to the best agent with the pay locked in, answers, cascades, reclaims."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents import presence
from agents.models import Agent, AgentStatus, Presence
from agents.services import agent_suspend
from marketplace.models import Offer, OfferStatus, RateCard
from marketplace.services import dispatch
from marketplace.services import pricing as pricing_services
from tests.factories import AgentFactory, UserFactory
from tests.tickets.factories import TicketFactory
from tickets import services as ticket_services
from tickets.models import Ticket, TicketEvent, TicketStatus

pytestmark = pytest.mark.django_db


def go_online(*agents):
    for agent in agents:
        presence.agent_presence_set(agent_id=agent.pk, status=Presence.ONLINE)
        agent.refresh_from_db()


def offer_for(ticket) -> Offer:
    return Offer.objects.get(ticket=ticket, status=OfferStatus.PENDING)


@pytest.fixture
def gil(db):
    """A second online English agent with general skills only."""
    agent = AgentFactory(user__name="Gil General", languages=["en"], skills=["general"])
    go_online(agent)
    return agent


# --- offers -------------------------------------------------------------------------------


def test_a_queued_ticket_is_offered_to_the_best_agent_with_pay_fixed_in(paula, gil):
    ticket = TicketFactory(category="payments")

    assert dispatch.dispatch_pass() == 1

    offer = offer_for(ticket)
    assert offer.agent == paula  # the specialist, not the generalist
    assert offer.base_amount == Decimal("2.50")  # the default rate card for payments
    assert offer.surge_multiplier == Decimal("1.00")
    assert offer.amount == Decimal("2.50") and offer.currency == "EUR"
    assert (offer.expires_at - offer.created_at) == timedelta(seconds=15)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OFFERED


def test_a_ticket_is_offered_to_one_agent_at_a_time(paula, gil):
    TicketFactory(category="general")
    dispatch.dispatch_pass()
    dispatch.dispatch_pass()
    assert Offer.objects.filter(status=OfferStatus.PENDING).count() == 1


def test_an_agent_gets_one_offer_at_a_time(paula):
    first = TicketFactory(category="payments")
    second = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    assert Offer.objects.filter(agent=paula, status=OfferStatus.PENDING).count() == 1
    assert offer_for(first).agent == paula
    second.refresh_from_db()
    assert second.status == TicketStatus.QUEUED


def test_urgent_tickets_are_offered_before_older_normal_ones(paula):
    older = TicketFactory(category="payments", queued_at=timezone.now() - timedelta(minutes=5))
    urgent = TicketFactory(category="payments", priority="urgent")
    dispatch.dispatch_pass()
    assert offer_for(urgent).agent == paula
    older.refresh_from_db()
    assert older.status == TicketStatus.QUEUED


def test_nobody_is_offered_a_ticket_in_a_language_they_do_not_speak(paula):
    ticket = TicketFactory(category="payments", language="pt")
    assert dispatch.dispatch_pass() == 0
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.QUEUED


def test_offline_away_and_unapproved_agents_are_not_offered_tickets(db):
    away = AgentFactory(skills=["general"])
    go_online(away)
    presence.agent_presence_set(agent_id=away.pk, status=Presence.AWAY)
    AgentFactory(skills=["general"])  # offline
    unapproved = AgentFactory(skills=["general"], status=AgentStatus.IN_REVIEW)
    Agent.objects.filter(pk=unapproved.pk).update(presence=Presence.ONLINE)
    TicketFactory(category="general")
    assert dispatch.dispatch_pass() == 0


def test_general_agents_take_a_category_only_while_no_specialist_is_online(gil):
    ticket = TicketFactory(category="disputes")
    dispatch.dispatch_pass()
    assert offer_for(ticket).agent == gil


def test_an_agent_at_capacity_gets_no_offer(paula):
    Agent.objects.filter(pk=paula.pk).update(capacity=1)
    busy = TicketFactory(category="payments")
    ticket_services.ticket_assign(ticket_id=busy.pk, agent_id=paula.pk)
    TicketFactory(category="payments")
    assert dispatch.dispatch_pass() == 0


def test_the_database_refuses_more_assigned_tickets_than_capacity(paula):
    with pytest.raises(IntegrityError), transaction.atomic():
        Agent.objects.filter(pk=paula.pk).update(active_tickets=paula.capacity + 1)


def test_the_database_refuses_a_second_pending_offer_for_a_ticket(paula, gil):
    ticket = TicketFactory(category="general")
    dispatch.dispatch_pass()
    offer = offer_for(ticket)
    with pytest.raises(IntegrityError), transaction.atomic():
        Offer.objects.create(
            ticket=ticket,
            agent=gil,
            base_amount=1,
            surge_multiplier=1,
            amount=1,
            currency="EUR",
            expires_at=offer.expires_at,
        )


def test_surge_raises_the_price_and_the_offer_keeps_it(paula):
    for _ in range(4):
        TicketFactory(category="payments")
    # 4 waiting, 2 free seats: ratio 2.0 → the 1.80 band.
    assert pricing_services.surge_now().multiplier == Decimal("1.80")
    dispatch.dispatch_pass()
    offer = Offer.objects.get(agent=paula)
    assert offer.surge_multiplier == Decimal("1.80")
    assert offer.amount == Decimal("4.50")
    Ticket.objects.filter(status=TicketStatus.QUEUED).update(status=TicketStatus.CANCELLED)
    assert pricing_services.surge_now().multiplier == Decimal("1.00")
    offer.refresh_from_db()
    assert offer.amount == Decimal("4.50")


def test_one_customers_many_tickets_do_not_raise_the_surge(paula):
    # Four tickets from one customer, 2 free seats: were they counted as four,
    # the ratio 2.0 would pay every offer 1.80 times; one customer is one demand.
    customer = UserFactory(password=None)
    for _ in range(4):
        TicketFactory(category="payments", customer=customer)

    surge = pricing_services.surge_now()

    assert surge.waiting == 1
    assert surge.multiplier == Decimal("1.00")


def test_a_changed_rate_card_prices_new_offers_only(paula, staff):
    first = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    pricing_services.rate_card_set(actor=staff, category="payments", amount="3.10")
    assert offer_for(first).amount == Decimal("2.50")
    dispatch.offer_decline(offer_id=offer_for(first).pk, user=paula.user)
    ticket_services.ticket_cancel(ticket_id=first.pk, caller=first.customer)  # no surge
    second = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    assert offer_for(second).amount == Decimal("3.10")


# --- answers ------------------------------------------------------------------------------


def test_accepting_assigns_the_ticket_to_the_agent(paula):
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    offer = dispatch.offer_accept(offer_id=offer_for(ticket).pk, user=paula.user)

    assert offer.status == OfferStatus.ACCEPTED
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.ASSIGNED and ticket.assigned_agent == paula
    paula.refresh_from_db()
    assert paula.active_tickets == 1


def test_declining_offers_the_ticket_at_once_to_the_next_agent(
    paula, gil, django_capture_on_commit_callbacks
):
    ticket = TicketFactory(category="general")
    dispatch.dispatch_pass()
    first = offer_for(ticket)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.offer_decline(offer_id=first.pk, user=first.agent.user)

    second = offer_for(ticket)
    assert second.agent != first.agent
    first.refresh_from_db()
    assert first.status == OfferStatus.DECLINED


def test_a_declined_ticket_is_not_offered_again_to_the_same_agent(paula):
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    dispatch.offer_decline(offer_id=offer_for(ticket).pk, user=paula.user)
    assert dispatch.dispatch_pass() == 0
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.QUEUED


@pytest.mark.parametrize("pass_on", ["decline", "expire"])
def test_a_ticket_the_only_agent_passed_on_comes_round_to_them_after_the_cooldown(
    paula, pass_on, settings
):
    settings.HUMANLINE = {**settings.HUMANLINE, "REOFFER_COOLDOWN_SECONDS": 60}
    start = timezone.now()
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    first = offer_for(ticket)
    passed_at = start + timedelta(seconds=10 if pass_on == "decline" else 16)
    with time_machine.travel(passed_at, tick=False):
        if pass_on == "decline":
            dispatch.offer_decline(offer_id=first.pk, user=paula.user)
        else:
            assert dispatch.offers_expire_overdue() == 1

    with time_machine.travel(passed_at + timedelta(seconds=59), tick=False):
        assert dispatch.sweep()["offered"] == 0  # still cooling down
    with time_machine.travel(passed_at + timedelta(seconds=61), tick=False):
        assert dispatch.sweep()["offered"] == 1  # round again

    again = offer_for(ticket)
    assert again.agent == paula and again.pk != first.pk


def test_expiry_cascades_to_the_next_agent(paula, gil):
    ticket = TicketFactory(category="general")
    dispatch.dispatch_pass()
    first = offer_for(ticket)
    with time_machine.travel(timezone.now() + timedelta(seconds=16)):
        result = dispatch.sweep()
    assert result["expired"] == 1 and result["offered"] == 1
    first.refresh_from_db()
    assert first.status == OfferStatus.EXPIRED
    assert offer_for(ticket).agent != first.agent


def test_an_answer_resets_the_streak_of_expired_offers(paula):
    start = timezone.now()
    for round_ in range(2):
        ticket = TicketFactory(category="payments")
        with time_machine.travel(start + timedelta(seconds=20 * round_)):
            dispatch.dispatch_pass()
            dispatch.offer_seen(offer_id=offer_for(ticket).pk, user=paula.user)
        with time_machine.travel(start + timedelta(seconds=20 * round_ + 16)):
            dispatch.offers_expire_overdue()
    with time_machine.travel(start + timedelta(seconds=50)):
        ticket = TicketFactory(category="payments")
        dispatch.dispatch_pass()
        dispatch.offer_decline(offer_id=offer_for(ticket).pk, user=paula.user)
    paula.refresh_from_db()
    assert paula.expired_streak == 0 and paula.presence == Presence.ONLINE


@pytest.mark.parametrize("first_answer", ["accept", "decline"])
def test_a_second_answer_is_a_409(paula, first_answer):
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    offer = offer_for(ticket)
    getattr(dispatch, f"offer_{first_answer}")(offer_id=offer.pk, user=paula.user)
    from config.errors import InvalidTransition

    with pytest.raises(InvalidTransition):
        dispatch.offer_accept(offer_id=offer.pk, user=paula.user)


def test_accepting_after_the_window_is_a_409_even_before_the_sweeper(paula):
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    offer = offer_for(ticket)
    from config.errors import InvalidTransition

    late = timezone.now() + timedelta(seconds=15, milliseconds=1)
    with time_machine.travel(late), pytest.raises(InvalidTransition) as error:
        dispatch.offer_accept(offer_id=offer.pk, user=paula.user)
    assert error.value.code == "offer_expired"
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OFFERED


def test_another_agents_offer_does_not_exist_for_you(paula, gil):
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    with pytest.raises(Offer.DoesNotExist):
        dispatch.offer_accept(offer_id=offer_for(ticket).pk, user=gil.user)


# --- agents leaving -----------------------------------------------------------------------


def test_going_offline_withdraws_pending_offers_and_redispatches(
    paula, gil, django_capture_on_commit_callbacks
):
    ticket = TicketFactory(category="general")
    dispatch.dispatch_pass()
    first = offer_for(ticket)
    with django_capture_on_commit_callbacks(execute=True):
        presence.agent_presence_set(agent_id=first.agent_id, status=Presence.OFFLINE)
    first.refresh_from_db()
    assert first.status == OfferStatus.WITHDRAWN
    assert offer_for(ticket).agent_id != first.agent_id


def test_an_agent_who_went_away_and_came_back_is_offered_the_ticket_again(
    paula, django_capture_on_commit_callbacks
):
    """The withdrawn offer was no choice of hers: it does not keep her off the ticket."""
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    first = offer_for(ticket)
    with django_capture_on_commit_callbacks(execute=True):
        presence.agent_presence_set(agent_id=paula.pk, status=Presence.AWAY)
    first.refresh_from_db()
    assert first.status == OfferStatus.WITHDRAWN

    with django_capture_on_commit_callbacks(execute=True):
        presence.agent_presence_set(agent_id=paula.pk, status=Presence.ONLINE)

    again = offer_for(ticket)  # at once, not after a cool-down
    assert again.agent == paula and again.pk != first.pk


def test_suspension_withdraws_offers_and_returns_assigned_tickets(
    paula, staff, django_capture_on_commit_callbacks
):
    held = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    dispatch.offer_accept(offer_id=offer_for(held).pk, user=paula.user)
    pending = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    offer = offer_for(pending)
    with django_capture_on_commit_callbacks(execute=True):
        agent_suspend(actor=staff, agent_id=paula.pk, reason="Fraud investigation")

    offer.refresh_from_db()
    held.refresh_from_db()
    paula.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN
    assert held.status == TicketStatus.QUEUED and held.assigned_agent is None
    assert paula.presence == Presence.OFFLINE and paula.active_tickets == 0


def test_a_cancelled_ticket_withdraws_its_offer(paula, django_capture_on_commit_callbacks):
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    offer = offer_for(ticket)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.ticket_cancel(ticket_id=ticket.pk, caller=ticket.customer)
    offer.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN
    paula.refresh_from_db()
    assert paula.expired_streak == 0


def _assign(agent) -> Ticket:
    ticket = TicketFactory(category="payments")
    dispatch.dispatch_pass()
    dispatch.offer_accept(offer_id=offer_for(ticket).pk, user=agent.user)
    ticket.refresh_from_db()
    return ticket


def test_tickets_of_an_agent_gone_past_the_longer_grace_return_to_the_queue(paula):
    ticket = _assign(paula)
    assert dispatch.assignments_reclaim()["disconnected"] == 0
    with time_machine.travel(timezone.now() + timedelta(minutes=4)):
        assert dispatch.assignments_reclaim()["disconnected"] == 0
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        from tickets.models import Message

        Message.objects.create(
            ticket=ticket, author=paula.user, author_role="agent", body="Looking into it"
        )
        assert dispatch.assignments_reclaim()["disconnected"] == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.QUEUED
    event = TicketEvent.objects.filter(ticket=ticket).last()
    assert "lost their connection" in event.reason


def test_a_live_socket_keeps_the_agents_tickets(paula):
    ticket = _assign(paula)
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        presence.agent_connection_open(agent_id=paula.pk, channel_name="specific.test!1")
        from tickets.services import message_post

        message_post(ticket_id=ticket.pk, caller=paula.user, body="Hello, I'm on it")
        assert dispatch.assignments_reclaim() == {"disconnected": 0, "silent": 0}


def test_a_silent_agent_loses_the_ticket_after_the_reply_limit(paula):
    ticket = _assign(paula)
    presence.agent_connection_open(agent_id=paula.pk, channel_name="specific.test!2")
    later = timezone.now() + timedelta(minutes=5, seconds=1)
    with time_machine.travel(later):
        presence.agent_connection_seen(channel_name="specific.test!2")
        assert dispatch.assignments_reclaim()["silent"] == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.QUEUED
    assert "did not reply" in TicketEvent.objects.filter(ticket=ticket).last().reason


def test_resolving_frees_capacity_and_starts_idle_time(paula):
    ticket = _assign(paula)
    ticket_services.ticket_resolve(ticket_id=ticket.pk, caller=paula.user)
    paula.refresh_from_db()
    assert paula.active_tickets == 0
    assert paula.idle_since is not None


def test_rate_card_rows_are_unique_per_category_and_currency(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        RateCard.objects.create(category_id="payments", currency="EUR", amount=1)
