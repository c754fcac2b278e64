"""Quality bonus, shift incentives and staff adjustments: each one ledger entry, once."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from config.errors import InvalidInput
from marketplace.models import EntryKind, LedgerEntry
from marketplace.services import ledger
from marketplace.services.shifts import shift_attendance_settle
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory
from tests.pay.helpers import accepted_and_resolved, rate

pytestmark = pytest.mark.django_db

TEN = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)


def kinds(agent):
    return list(
        LedgerEntry.objects.filter(agent=agent).order_by("id").values_list("kind", "amount")
    )


# --- quality bonus ---------------------------------------------------------------------


def test_a_top_rating_earns_the_quality_bonus(worker):
    ticket, _ = accepted_and_resolved(worker)
    rating = rate(ticket, 5)
    bonus = LedgerEntry.objects.get(kind=EntryKind.QUALITY_BONUS)
    assert (bonus.agent, bonus.amount, bonus.currency) == (worker, Decimal("0.50"), "EUR")
    assert bonus.rating == rating and bonus.ticket == ticket


def test_a_lower_rating_earns_no_bonus(worker):
    ticket, _ = accepted_and_resolved(worker)
    rate(ticket, 4)
    assert not LedgerEntry.objects.filter(kind=EntryKind.QUALITY_BONUS).exists()


def test_the_bonus_table_is_configurable(worker, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "QUALITY_BONUS": "4:0.20, 5:1.00"}
    first, _ = accepted_and_resolved(worker)
    second, _ = accepted_and_resolved(worker)
    rate(first, 4)
    rate(second, 5)
    amounts = LedgerEntry.objects.filter(kind=EntryKind.QUALITY_BONUS).values_list(
        "amount", flat=True
    )
    assert sorted(amounts) == [Decimal("0.20"), Decimal("1.00")]


# --- shift incentives ------------------------------------------------------------------


def booked_slot(agent, *, kind: str, amount: str, currency: str = "EUR"):
    slot = ShiftSlotFactory(
        starts_at=TEN,
        ends_at=TEN + timedelta(hours=1),
        incentive_kind=kind,
        incentive_amount=Decimal(amount),
        incentive_currency=currency,
    )
    return ShiftBookingFactory(slot=slot, agent=agent)


def test_an_attended_slot_with_a_bonus_pays_the_bonus_when_settled(worker, clock):
    # Given a booked bonus slot 10:00-11:00 and the agent online since 09:00
    booking = booked_slot(worker, kind="bonus", amount="15.00")
    # When the slot ends and attendance is settled
    clock.move_to(TEN + timedelta(hours=1))
    assert shift_attendance_settle() == 1
    # Then the agent earns the bonus, once, referencing the booking
    entry = LedgerEntry.objects.get(kind=EntryKind.SHIFT_INCENTIVE)
    assert (entry.amount, entry.booking_id) == (Decimal("15.00"), booking.pk)
    assert shift_attendance_settle() == 0
    assert LedgerEntry.objects.filter(kind=EntryKind.SHIFT_INCENTIVE).count() == 1


def test_a_no_show_earns_no_incentive(agent, clock):
    booked_slot(agent, kind="bonus", amount="15.00")  # the agent never goes online
    clock.move_to(TEN + timedelta(hours=1))
    shift_attendance_settle()
    assert not LedgerEntry.objects.exists()


def test_the_hourly_minimum_tops_up_task_pay_earned_in_the_slot(worker, clock):
    # Given a 12.00/h guarantee for 10:00-11:00, and a 2.50 task resolved at 10:30
    booked_slot(worker, kind="hourly_minimum", amount="12.00")
    clock.move_to(TEN + timedelta(minutes=30))
    accepted_and_resolved(worker, category="payments")
    # When the slot is settled with the agent online the whole hour
    clock.move_to(TEN + timedelta(hours=1))
    shift_attendance_settle()
    # Then the top-up is 12.00 - 2.50
    entry = LedgerEntry.objects.get(kind=EntryKind.SHIFT_INCENTIVE)
    assert entry.amount == Decimal("9.50")


def test_no_top_up_when_task_pay_beats_the_hourly_minimum(worker, clock):
    booked_slot(worker, kind="hourly_minimum", amount="2.00")
    clock.move_to(TEN + timedelta(minutes=10))
    accepted_and_resolved(worker, category="payments")
    clock.move_to(TEN + timedelta(hours=1))
    shift_attendance_settle()
    assert not LedgerEntry.objects.filter(kind=EntryKind.SHIFT_INCENTIVE).exists()


def test_task_pay_outside_the_slot_does_not_count_against_the_minimum(worker, clock):
    booked_slot(worker, kind="hourly_minimum", amount="12.00")
    accepted_and_resolved(worker)  # at 09:00, before the slot
    clock.move_to(TEN + timedelta(hours=1))
    shift_attendance_settle()
    assert LedgerEntry.objects.get(kind=EntryKind.SHIFT_INCENTIVE).amount == Decimal("12.00")


# --- staff adjustments -----------------------------------------------------------------


def test_staff_adjust_earnings_up_and_down_with_a_reason(agent, staff):
    up = ledger.adjustment_create(actor=staff, agent_id=agent.pk, amount="5.00", reason="Bug")
    down = ledger.adjustment_create(
        actor=staff, agent_id=agent.pk, amount="-1.25", reason="Duplicate pay"
    )
    assert (up.amount, up.created_by, up.reason) == (Decimal("5.00"), staff, "Bug")
    assert down.amount == Decimal("-1.25") and down.kind == EntryKind.ADJUSTMENT


@pytest.mark.parametrize(
    ("amount", "reason", "field"),
    [
        ("5.00", "  ", "reason"),
        ("0", "Because", "amount"),
        ("1.234", "Because", "amount"),
        ("lots", "Because", "amount"),
        ("NaN", "Because", "amount"),
        ("1000000", "Because", "amount"),
    ],
)
def test_an_adjustment_needs_a_reason_and_a_sane_amount(agent, staff, amount, reason, field):
    with pytest.raises(InvalidInput) as error:
        ledger.adjustment_create(actor=staff, agent_id=agent.pk, amount=amount, reason=reason)
    assert field in error.value.fields
    assert not LedgerEntry.objects.exists()
