"""The pay ledger: every amount an agent earns or loses is one insert-only entry.

Entries are written here only (and the engaged-time floor in ``payroll``), each
inside the transaction of the change that caused it, through hooks that the
other apps call with their row locked:

- ``tickets.services.RESOLVE_HOOKS``  -> ``on_ticket_resolved``: task pay;
- ``tickets.services.REOPEN_HOOKS``   -> ``on_ticket_reopened``: its reversal;
- ``tickets.services.RATED_HOOKS``    -> ``on_ticket_rated``: quality bonus;
- ``marketplace.services.shifts.SETTLED_HOOKS`` -> ``on_booking_settled``: shift incentive.

Invariants and what holds them (docs/architecture.md, "Pay"):
- entries are never changed: no update or delete path here, a read-only admin,
  and on PostgreSQL a trigger refusing UPDATE and DELETE (migration 0005);
- one task pay per assignment and per accepted offer, one reversal per task
  pay, one bonus per rating, one incentive per booking: partial unique indexes,
  with the service treating a duplicate as "already booked";
- an entry lands in the period open when it is made, never in a closed one:
  the writer takes a share lock on the period row and re-reads its status,
  closing takes an exclusive lock (``payroll.pay_period_close``), and on
  PostgreSQL a trigger refuses an insert into a closed period.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Subquery, Sum
from django.utils import timezone

from agents.models import Agent, User
from config.errors import InvalidInput
from marketplace.models import (
    BookingStatus,
    EntryKind,
    IncentiveKind,
    LedgerEntry,
    Offer,
    OfferStatus,
    PayPeriod,
    PayPeriodStatus,
    ShiftBooking,
)

CENT = Decimal("0.01")


def _policy(name: str):
    return settings.HUMANLINE[name]


def money(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def currency() -> str:
    return _policy("CURRENCY")


# --- pay periods ------------------------------------------------------------------


def period_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """The pay week holding ``moment``: from the configured weekday's midnight, local time.

    Computed on the wall clock of ``PAY_PERIOD_TIME_ZONE``, so a week across a
    daylight-saving change is 167 or 169 hours long, as payroll expects.
    """
    zone = ZoneInfo(_policy("PAY_PERIOD_TIME_ZONE"))
    local = moment.astimezone(zone)
    back = (local.weekday() - _policy("PAY_PERIOD_START_WEEKDAY")) % 7
    first_day = local.date() - timedelta(days=back)
    start = datetime.combine(first_day, time(0), tzinfo=zone)
    end = datetime.combine(first_day + timedelta(days=7), time(0), tzinfo=zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def period_get_or_create(moment: datetime) -> PayPeriod:
    start, end = period_bounds(moment)
    # get_or_create inserts in a savepoint: two writers racing for a new week
    # meet on the unique starts_at and the loser reads the winner's row.
    period, _ = PayPeriod.objects.get_or_create(starts_at=start, defaults={"ends_at": end})
    return period


def _current_under_share_lock(moment: datetime) -> PayPeriod | None:
    """The week holding ``moment``, share-locked, in one statement, when it exists and
    is open (every entry of the week finds it so); None sends the caller the long way."""
    start, end = period_bounds(moment)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM marketplace_payperiod WHERE starts_at = %s AND status = %s"
                " FOR SHARE",
                [start, PayPeriodStatus.OPEN],
            )
            row = cursor.fetchone()
            if row is None:
                return None
            return PayPeriod(pk=row[0], starts_at=start, ends_at=end, status=PayPeriodStatus.OPEN)
    return PayPeriod.objects.filter(starts_at=start, status=PayPeriodStatus.OPEN).first()


def _status_under_share_lock(period_id: int) -> str:
    """Re-read a period's status holding a share lock until the transaction ends.

    Share locks do not block each other (every writer of every agent may hold
    one), but they block ``pay_period_close``'s exclusive lock: a close waits
    for entries in flight, and an entry started after a close sees it closed.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT status FROM marketplace_payperiod WHERE id = %s FOR SHARE", [period_id]
            )
            return cursor.fetchone()[0]
    # SQLite has one writer at a time: the plain read is already serialised.
    return PayPeriod.objects.values_list("status", flat=True).get(pk=period_id)


def period_for_entry(now: datetime | None = None) -> PayPeriod:
    """The period an entry made now belongs to, share-locked.  Caller: atomic.

    The week holding ``now`` while it is open; once closed, the next one.
    """
    assert transaction.get_connection().in_atomic_block, "lock the period inside a transaction"
    moment = now or timezone.now()
    current = _current_under_share_lock(moment)
    if current is not None:
        return current
    while True:
        period = period_get_or_create(moment)
        if _status_under_share_lock(period.pk) == PayPeriodStatus.OPEN:
            return period
        moment = period.ends_at


def _book(*, now: datetime | None = None, checked: bool = False, **fields) -> LedgerEntry | None:
    """Insert one entry in the open period; None when a unique rule says it exists.

    ``checked``: the caller has just seen that no such entry exists, so a clash is
    a race alone; the insert then skips a clash (``ON CONFLICT DO NOTHING``) with
    no savepoint around it, and the entry returned has no id.
    """
    now = now or timezone.now()
    period = period_for_entry(now)
    if checked:
        entry = LedgerEntry(period=period, created_at=now, **fields)
        LedgerEntry.objects.bulk_create([entry], ignore_conflicts=True)
        return entry
    try:
        with transaction.atomic():
            return LedgerEntry.objects.create(period=period, created_at=now, **fields)
    except IntegrityError:
        # A partial unique index (one task per assignment, one reversal per
        # task…) refused a second entry: the first one stands, exactly once.
        return None


# --- task pay and its reversal ------------------------------------------------------


def _unpaid_accepted_offers():
    """The agent's accepted offers for the ticket that have paid no task yet, latest
    first (for a subquery on an assignment event: its ticket and agent)."""
    # NOT EXISTS per offer, through the one-task-per-offer index: ``exclude()`` over
    # the reverse relation read every task entry of the ledger instead.
    paid = LedgerEntry.objects.filter(offer=OuterRef("pk"), kind=EntryKind.TASK)
    return (
        Offer.objects.filter(
            ticket=OuterRef("ticket"), agent=OuterRef("agent"), status=OfferStatus.ACCEPTED
        )
        .filter(~Exists(paid))
        .order_by("-answered_at", "-id")
    )


def _current_assignment(*, ticket, agent: Agent):
    """The agent's current assignment of the ticket (its ``assigned`` event), with the
    offer that fixed its price (``offer_id``, ``offer_amount``, ``offer_currency``,
    None without one) and whether it is ``paid``: one statement."""
    from tickets.models import TicketEvent, TicketStatus

    offer = _unpaid_accepted_offers()
    paid = LedgerEntry.objects.filter(assignment=OuterRef("pk"), kind=EntryKind.TASK)
    return (
        TicketEvent.objects.filter(ticket=ticket, to_status=TicketStatus.ASSIGNED, agent=agent)
        .annotate(
            paid=Exists(paid),
            offer_id=Subquery(offer.values("id")[:1]),
            offer_amount=Subquery(offer.values("amount")[:1]),
            offer_currency=Subquery(offer.values("currency")[:1]),
        )
        .order_by("-created_at", "-id")
        .only("id")
        .first()
    )


def task_pay_book(*, ticket, agent: Agent) -> LedgerEntry | None:
    """Task pay for the agent's current assignment of ``ticket``, once.  Caller: atomic.

    The locked price of the agent's latest accepted offer for the ticket that
    has not paid a task yet.  A ticket assigned without an offer (by staff or
    a service) pays the rate card for its category at resolve time, without
    surge: nobody promised more.
    """
    from marketplace.services import pricing

    assignment = _current_assignment(ticket=ticket, agent=agent)
    if assignment is None or assignment.paid:
        return None
    if assignment.offer_id is not None:
        # Quantised as the offer stored it (SQLite hands a subquery's decimal back bare).
        amount, code = money(assignment.offer_amount), assignment.offer_currency
        reason = f"Ticket #{ticket.pk} resolved: offer {assignment.offer_id} at {amount} {code}."
    else:
        code = pricing.currency()
        amount = pricing.base_rate(category=ticket.category, currency_code=code)
        reason = f"Ticket #{ticket.pk} resolved: assigned without an offer, rate card price."
    return _book(
        agent=agent,
        kind=EntryKind.TASK,
        amount=money(amount),
        currency=code,
        ticket=ticket,
        offer_id=assignment.offer_id,
        assignment=assignment,
        reason=reason,
        checked=True,
    )


def on_ticket_resolved(*, ticket, agent: Agent) -> None:
    task_pay_book(ticket=ticket, agent=agent)


def on_ticket_reopened(*, ticket, agent: Agent | None) -> None:
    """A reopen (only possible within the window) reverses the last unreversed task pay."""
    if agent is None:
        return
    task = (
        LedgerEntry.objects.filter(
            ticket=ticket, agent=agent, kind=EntryKind.TASK, reversed_by__isnull=True
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if task is None:
        return
    _book(
        agent=agent,
        kind=EntryKind.REVERSAL,
        amount=-task.amount,
        currency=task.currency,
        ticket=ticket,
        offer=task.offer,
        reverses=task,
        reason=f"Ticket #{ticket.pk} reopened within the reopen window: task pay reversed.",
    )


# --- quality bonus ------------------------------------------------------------------


def quality_bonus_table() -> dict[int, Decimal]:
    """``QUALITY_BONUS`` as {score: amount}, e.g. "5:0.50" -> {5: Decimal("0.50")}."""
    table = {}
    for part in str(_policy("QUALITY_BONUS") or "").split(","):
        if part.strip():
            score, amount = part.split(":")
            table[int(score)] = money(amount.strip())
    return table


def on_ticket_rated(*, rating) -> None:
    amount = quality_bonus_table().get(rating.score, Decimal(0))
    if amount <= 0:
        return
    _book(
        agent_id=rating.agent_id,
        kind=EntryKind.QUALITY_BONUS,
        amount=amount,
        currency=currency(),
        ticket_id=rating.ticket_id,
        rating=rating,
        reason=f"Rated {rating.score} by the customer of ticket #{rating.ticket_id}.",
    )


# --- shift incentives ---------------------------------------------------------------


def task_pay_in_window(*, agent_id: int, start: datetime, end: datetime, code: str) -> Decimal:
    """Task pay booked in ``[start, end)``, net of the reversals of those tasks so far."""
    tasks = LedgerEntry.objects.filter(
        agent_id=agent_id,
        kind=EntryKind.TASK,
        currency=code,
        created_at__gte=start,
        created_at__lt=end,
    )
    paid = tasks.aggregate(total=Sum("amount"))["total"] or Decimal(0)
    reversed_ = LedgerEntry.objects.filter(
        kind=EntryKind.REVERSAL, reverses__in=tasks.values("pk")
    ).aggregate(total=Sum("amount"))["total"] or Decimal(0)
    return paid + reversed_


def shift_incentive_amount(booking: ShiftBooking) -> Decimal:
    """What a settled booking earns: nothing unless attended.

    ``bonus``: the slot's fixed amount.  ``hourly_minimum``: the rate times the
    hours online in the slot, less the task pay earned in the slot, if above 0.
    """
    slot = booking.slot
    if booking.status != BookingStatus.ATTENDED or not slot.incentive_kind:
        return Decimal(0)
    if slot.incentive_kind == IncentiveKind.BONUS:
        return money(slot.incentive_amount)
    guaranteed = money(slot.incentive_amount * Decimal(booking.online_seconds or 0) / 3600)
    earned = task_pay_in_window(
        agent_id=booking.agent_id,
        start=slot.starts_at,
        end=slot.ends_at,
        code=slot.incentive_currency,
    )
    return max(Decimal(0), guaranteed - earned)


def on_booking_settled(*, booking: ShiftBooking, now: datetime | None = None) -> None:
    amount = shift_incentive_amount(booking)
    if amount <= 0:
        return
    slot = booking.slot
    _book(
        now=now,
        agent_id=booking.agent_id,
        kind=EntryKind.SHIFT_INCENTIVE,
        amount=amount,
        currency=slot.incentive_currency,
        booking=booking,
        reason=f"Shift {slot} attended: {slot.get_incentive_kind_display().lower()}.",
    )


# --- staff adjustments ----------------------------------------------------------------


@transaction.atomic
def adjustment_create(
    *, actor: User, agent_id: int, amount, reason: str, currency_code: str | None = None
) -> LedgerEntry:
    """A staff correction, positive or negative, with a reason; the entry is its audit."""
    errors: dict[str, list[str]] = {}
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["Say why the earnings are adjusted."]
    elif len(reason) > 1000:
        errors["reason"] = ["Keep the reason under 1000 characters."]
    code = (currency_code or currency()).strip().upper()
    if len(code) != 3 or not code.isalpha():
        errors["currency"] = ["Give an ISO 4217 currency code, such as 'EUR'."]
    limit = Decimal(_policy("PAY_ADJUSTMENT_MAX"))
    try:
        value = Decimal(str(amount))
        if not value.is_finite() or value != value.quantize(CENT):
            raise InvalidOperation
        if value == 0 or abs(value) > limit:
            errors["amount"] = [f"The amount must be non-zero and at most {limit} either way."]
    except (InvalidOperation, ValueError, TypeError):
        errors["amount"] = ["Give the amount as a decimal with at most 2 places, e.g. '-2.50'."]
    if errors:
        raise InvalidInput(next(iter(errors.values()))[0], fields=errors)
    agent = Agent.objects.get(pk=agent_id)
    entry = _book(
        agent=agent,
        kind=EntryKind.ADJUSTMENT,
        amount=money(value),
        currency=code,
        reason=reason,
        created_by=actor,
    )
    assert entry is not None  # adjustments have no uniqueness rule
    return entry
