"""Weekly pay periods, closing (floor top-ups, then frozen) and where late entries land."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from config.errors import InvalidTransition
from marketplace.models import EntryKind, LedgerEntry, PayPeriod
from marketplace.services import ledger, payroll
from tests.pay.helpers import accepted_and_resolved, reopen, resolve
from tests.tickets.factories import TicketFactory
from tickets import services as ticket_services

pytestmark = pytest.mark.django_db

MONDAY = datetime(2030, 1, 7, tzinfo=UTC)


def test_a_pay_week_runs_from_monday_midnight_utc_by_default(clock):
    start, end = ledger.period_bounds(datetime(2030, 1, 10, 15, 0, tzinfo=UTC))
    assert (start, end) == (MONDAY, MONDAY + timedelta(days=7))


def test_the_start_weekday_and_time_zone_are_configurable(settings):
    settings.HUMANLINE = {
        **settings.HUMANLINE,
        "PAY_PERIOD_START_WEEKDAY": 6,
        "PAY_PERIOD_TIME_ZONE": "America/Sao_Paulo",
    }
    # Wednesday 9 January 2030 -> the week from Sunday 6 January, 00:00 in São Paulo (UTC-3)
    start, end = ledger.period_bounds(datetime(2030, 1, 9, 12, tzinfo=UTC))
    assert start == datetime(2030, 1, 6, 3, tzinfo=UTC)
    assert end == datetime(2030, 1, 13, 3, tzinfo=UTC)


def test_a_week_across_a_daylight_saving_change_keeps_local_midnights(settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "PAY_PERIOD_TIME_ZONE": "Europe/Lisbon"}
    start, end = ledger.period_bounds(datetime(2030, 3, 27, 12, tzinfo=UTC))
    assert start == datetime(2030, 3, 25, 0, tzinfo=UTC)  # Monday, still winter time
    assert end == datetime(2030, 3, 31, 23, tzinfo=UTC)  # next Monday 00:00 summer time
    assert end - start == timedelta(hours=167)


def test_an_entry_belongs_to_the_week_it_was_made_in(worker):
    accepted_and_resolved(worker)
    entry = LedgerEntry.objects.get()
    assert entry.period.starts_at == MONDAY and entry.period.status == "open"


def test_a_period_cannot_be_closed_before_it_ends(worker, staff):
    accepted_and_resolved(worker)
    period = LedgerEntry.objects.get().period
    with pytest.raises(InvalidTransition) as error:
        payroll.pay_period_close(period_id=period.pk, actor=staff)
    assert error.value.code == "period_not_ended"


def test_closing_freezes_the_period_and_is_safe_to_repeat(worker, staff, clock):
    accepted_and_resolved(worker, category="payments")
    period = LedgerEntry.objects.get().period
    clock.move_to(MONDAY + timedelta(days=7, hours=1))

    closed = payroll.pay_period_close(period_id=period.pk, actor=staff)
    again = payroll.pay_period_close(period_id=period.pk, actor=None)

    assert closed.status == again.status == "closed"
    assert again.closed_by == staff and again.closed_at == closed.closed_at
    assert again.entry_count == LedgerEntry.objects.filter(period=period).count()
    assert set(again.totals) == {"EUR"}


def test_a_reversal_after_the_close_lands_in_the_next_period(worker, staff, clock):
    # Given a ticket resolved on Sunday evening, in a week that is then closed
    clock.move_to(MONDAY + timedelta(days=6, hours=22))
    ticket, _ = accepted_and_resolved(worker)
    task = LedgerEntry.objects.get()
    clock.move_to(MONDAY + timedelta(days=7, hours=9))
    payroll.pay_period_close(period_id=task.period_id, actor=staff)
    frozen = PayPeriod.objects.get(pk=task.period_id)

    # When the customer reopens it on Monday, within the window
    reopen(ticket)

    # Then the reversal goes to the new week, and the closed one is untouched
    reversal = LedgerEntry.objects.get(kind=EntryKind.REVERSAL)
    assert reversal.period.starts_at == MONDAY + timedelta(days=7)
    assert reversal.period.status == "open"
    assert LedgerEntry.objects.filter(period=frozen).count() == frozen.entry_count


def test_an_entry_made_in_a_week_closed_early_goes_to_the_following_week(agent, staff, clock):
    # A week closed (by an operator, for instance) while "now" still falls inside it
    # cannot take entries: they go to the next open week.
    start, end = ledger.period_bounds(MONDAY)
    period = PayPeriod.objects.create(starts_at=start, ends_at=end)
    payroll.pay_period_close(period_id=period.pk, actor=staff, now=end)
    entry = ledger.adjustment_create(actor=staff, agent_id=agent.pk, amount="1.00", reason="x")
    assert entry.period.starts_at == end


# --- the engaged-time floor --------------------------------------------------------------


def hold(agent, clock, *, at: datetime, minutes: int, category="general"):
    """Assign a ticket to the agent at ``at`` (no offer) and resolve it ``minutes`` later."""
    clock.move_to(at)
    ticket = TicketFactory(category=category)
    ticket_services.ticket_assign(ticket_id=ticket.pk, agent_id=agent.pk)
    clock.move_to(at + timedelta(minutes=minutes))
    resolve(ticket, agent)
    return ticket


def test_engaged_time_counts_overlapping_tickets_once(worker, clock):
    # 09:00-10:00 and 09:30-11:00 overlap: 2 hours engaged, not 2.5
    clock.move_to(MONDAY + timedelta(hours=9))
    first, second = TicketFactory(), TicketFactory()
    ticket_services.ticket_assign(ticket_id=first.pk, agent_id=worker.pk)
    clock.shift(timedelta(minutes=30))
    ticket_services.ticket_assign(ticket_id=second.pk, agent_id=worker.pk)
    clock.shift(timedelta(minutes=30))
    resolve(first, worker)
    clock.shift(timedelta(hours=1))
    resolve(second, worker)
    engaged = payroll.engaged_seconds(
        start=MONDAY, end=MONDAY + timedelta(days=7), now=MONDAY + timedelta(days=8)
    )
    assert engaged == {worker.pk: 2 * 3600}


def test_engaged_time_is_clipped_to_the_week(worker, clock):
    # Assigned Sunday 23:00, resolved Monday 01:00: one hour in each week
    hold(worker, clock, at=MONDAY + timedelta(days=6, hours=23), minutes=120)
    engaged = payroll.engaged_seconds(
        start=MONDAY, end=MONDAY + timedelta(days=7), now=MONDAY + timedelta(days=8)
    )
    assert engaged == {worker.pk: 3600}


def test_a_requeue_ends_the_engaged_time(worker, clock):
    clock.move_to(MONDAY + timedelta(hours=9))
    ticket = TicketFactory()
    ticket_services.ticket_assign(ticket_id=ticket.pk, agent_id=worker.pk)
    clock.shift(timedelta(minutes=45))
    ticket_services.ticket_requeue(ticket_id=ticket.pk, reason="Agent disconnected.")
    engaged = payroll.engaged_seconds(
        start=MONDAY, end=MONDAY + timedelta(days=7), now=MONDAY + timedelta(days=8)
    )
    assert engaged == {worker.pk: 45 * 60}


def test_closing_tops_earnings_up_to_the_engaged_time_floor(worker, colleague, staff, clock):
    # Given 2 hours engaged earning 2.00 + 2.00 (floor 10.00/h -> 20.00 due)
    hold(worker, clock, at=MONDAY + timedelta(hours=9), minutes=60)
    hold(worker, clock, at=MONDAY + timedelta(hours=14), minutes=60)
    # ... and a colleague whose 6 minutes (1.00 due) earned 2.00
    hold(colleague, clock, at=MONDAY + timedelta(hours=15), minutes=6)
    period = LedgerEntry.objects.first().period

    # When the week is closed
    clock.move_to(MONDAY + timedelta(days=7, hours=2))
    payroll.pay_period_close(period_id=period.pk, actor=staff)

    # Then only the agent below the floor gets the difference, in the closed week
    floor = LedgerEntry.objects.get(kind=EntryKind.EARNINGS_FLOOR)
    assert (floor.agent, floor.amount, floor.period) == (worker, Decimal("16.00"), period)
    totals = LedgerEntry.objects.filter(agent=worker, period=period).values_list(
        "amount", flat=True
    )
    assert sum(totals) == Decimal("20.00")


def test_the_floor_rate_and_currency_are_configurable(worker, staff, clock, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "PAY_FLOOR_HOURLY_RATE": "30.00"}
    hold(worker, clock, at=MONDAY + timedelta(hours=9), minutes=30)
    period = LedgerEntry.objects.get().period
    clock.move_to(MONDAY + timedelta(days=7))
    payroll.pay_period_close(period_id=period.pk, actor=staff)
    floor = LedgerEntry.objects.get(kind=EntryKind.EARNINGS_FLOOR)
    assert floor.amount == Decimal("13.00")  # 15.00 for half an hour, less 2.00 earned


def test_a_reversed_task_does_not_count_as_earnings_for_the_floor(worker, staff, clock):
    ticket = hold(worker, clock, at=MONDAY + timedelta(hours=9), minutes=60)
    reopen(ticket)  # -2.00; the hour of work still counts as engaged
    period = LedgerEntry.objects.first().period
    clock.move_to(MONDAY + timedelta(days=7))
    payroll.pay_period_close(period_id=period.pk, actor=staff)
    assert LedgerEntry.objects.get(kind=EntryKind.EARNINGS_FLOOR).amount == Decimal("10.00")
