"""Task pay: the locked price of the accepted offer, once per assignment; reopen reverses it."""

from datetime import timedelta
from decimal import Decimal

import pytest

from config.errors import InvalidTransition
from marketplace.models import EntryKind, LedgerEntry
from marketplace.services import ledger
from marketplace.services import pricing as pricing_services
from tests.pay.helpers import accept, accepted_and_resolved, reopen, resolve
from tests.tickets.factories import TicketFactory
from tickets import services as ticket_services
from tickets.models import TicketEvent

pytestmark = pytest.mark.django_db


def entries(agent, kind=None):
    rows = LedgerEntry.objects.filter(agent=agent).order_by("id")
    return list(rows.filter(kind=kind) if kind else rows)


def test_resolving_pays_the_price_locked_into_the_accepted_offer(worker, staff):
    # Given a payments ticket accepted at surge 1.50 (2.50 x 1.5 = 3.75)
    ticket = TicketFactory(category="payments")
    offer = accept(ticket, worker, multiplier="1.50")
    # ... and a rate card raised after the offer was made
    pricing_services.rate_card_set(actor=staff, category="payments", amount="9.00")

    # When the agent resolves it
    resolve(ticket, worker)

    # Then they earn exactly the locked price, referenced to the offer and assignment
    (task,) = entries(worker)
    assert task.kind == EntryKind.TASK
    assert (task.amount, task.currency) == (Decimal("3.75"), "EUR")
    assert task.offer == offer and task.ticket == ticket
    assert task.assignment == TicketEvent.objects.get(ticket=ticket, to_status="assigned")
    assert task.period.starts_at <= task.created_at < task.period.ends_at


def test_nothing_is_paid_before_the_ticket_is_resolved(worker):
    accept(TicketFactory(), worker)
    assert entries(worker) == []


def test_a_ticket_assigned_without_an_offer_pays_the_rate_card_without_surge(worker):
    ticket = TicketFactory(category="technical")
    ticket_services.ticket_assign(ticket_id=ticket.pk, agent_id=worker.pk)
    resolve(ticket, worker)
    (task,) = entries(worker)
    assert task.amount == Decimal("3.00") and task.offer is None
    assert "without an offer" in task.reason


def test_a_reopen_within_the_window_reverses_the_task_pay(worker, clock):
    ticket, _ = accepted_and_resolved(worker, category="payments")
    clock.shift(timedelta(hours=71))

    reopen(ticket)

    task, reversal = entries(worker)
    assert reversal.kind == EntryKind.REVERSAL
    assert reversal.amount == -task.amount == Decimal("-2.50")
    assert reversal.reverses == task and reversal.ticket == ticket


def test_a_reopen_after_the_window_is_refused_and_nothing_is_reversed(worker, clock):
    ticket, _ = accepted_and_resolved(worker)
    clock.shift(timedelta(hours=73))
    with pytest.raises(InvalidTransition):
        reopen(ticket)
    assert [e.kind for e in entries(worker)] == [EntryKind.TASK]


def test_whoever_resolves_a_reopened_ticket_next_earns_their_own_offer(worker, colleague):
    ticket, _ = accepted_and_resolved(worker, category="general")
    reopen(ticket)

    accepted_and_resolved(colleague, ticket=ticket, multiplier="2.00")

    assert sum(e.amount for e in entries(worker)) == 0
    (task,) = entries(colleague)
    assert task.amount == Decimal("4.00")


def test_the_same_agent_resolving_again_is_paid_again_for_the_new_assignment(worker):
    ticket, first = accepted_and_resolved(worker)
    reopen(ticket)
    _, second = accepted_and_resolved(worker, ticket=ticket, multiplier="1.20")

    tasks = entries(worker, EntryKind.TASK)
    assert [t.offer for t in tasks] == [first, second]
    assert sum(e.amount for e in entries(worker)) == Decimal("2.40")
    reopen(ticket)
    assert sum(e.amount for e in entries(worker)) == 0
    assert LedgerEntry.objects.filter(kind=EntryKind.REVERSAL).count() == 2


def test_booking_the_same_assignment_twice_pays_once(worker):
    ticket, _ = accepted_and_resolved(worker)
    ticket.refresh_from_db()
    assert ledger.task_pay_book(ticket=ticket, agent=worker) is None
    assert len(entries(worker, EntryKind.TASK)) == 1


def test_an_offer_pays_once_a_later_assignment_without_one_pays_the_rate_card(worker):
    ticket, offer = accepted_and_resolved(worker, category="technical", multiplier="2.00")
    reopen(ticket)
    # Staff give the reopened ticket back to the same agent, without an offer.
    ticket_services.ticket_assign(ticket_id=ticket.pk, agent_id=worker.pk)
    resolve(ticket, worker)

    first, reversal, second = entries(worker)
    assert (first.offer, first.amount) == (offer, Decimal("6.00"))
    assert reversal.reverses == first
    assert (second.offer, second.amount) == (None, Decimal("3.00"))
    assert second.assignment != first.assignment
