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
from django.db.models import Sum
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


def _book(*, now: datetime | None = None, new: bool = False, **fields) -> LedgerEntry | None:
    """Insert one entry in the open period; None when a unique rule says it exists.

    ``new``: the caller knows no such entry can exist, so the insert needs no
    savepoint to survive a clash; a clash would be a fault, and fails the caller.
    """
    now = now or timezone.now()
    period = period_for_entry(now)
    if new:
        return LedgerEntry.objects.create(period=period, created_at=now, **fields)
    try:
        with transaction.atomic():
            return LedgerEntry.objects.create(period=period, created_at=now, **fields)
    except IntegrityError:
        # A partial unique index (one task per assignment, one reversal per
        # task…) refused a second entry: the first one stands, exactly once.
        return None


# --- task pay and its reversal ------------------------------------------------------


def _current_assignment_id(*, ticket, agent: Agent) -> int | None:
    """The agent's current assignment of the ticket: its latest ``assigned`` event."""
    from tickets.models import TicketEvent, TicketStatus

    return (
        TicketEvent.objects.filter(ticket=ticket, to_status=TicketStatus.ASSIGNED, agent=agent)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
        .first()
    )


def _latest_accepted_offer(*, ticket, agent: Agent) -> tuple | None:
    """``(id, amount, currency)`` of the agent's latest accepted offer for the ticket."""
    return (
        Offer.objects.filter(ticket=ticket, agent=agent, status=OfferStatus.ACCEPTED)
        .order_by("-answered_at", "-id")
        .values_list("id", "amount", "currency")
        .first()
    )


def task_pay_book(*, ticket, agent: Agent, first: bool = False) -> LedgerEntry | None:
    """Task pay for the agent's current assignment of ``ticket``, once; None when it
    was paid already.  Caller: atomic.  ``first``: the ticket, locked, is being
    resolved for the first time, so nothing of it can have been paid.

    The price locked into the agent's latest accepted offer for the ticket,
    unless that offer has paid a task already (an assignment since came
    without an offer: staff gave the reopened ticket back to the same agent).
    A ticket assigned without an unpaid offer pays the rate card for its
    category at resolve time, without surge: nobody promised more.

    Whether the offer or the assignment has paid is not read first: the
    ledger's unique rules (one task per offer, one per assignment) answer it
    as the entry is inserted, which costs a resolve less than asking.
    """
    from marketplace.services import pricing

    assignment_id = _current_assignment_id(ticket=ticket, agent=agent)
    if assignment_id is None:
        return None
    entry = {"agent": agent, "kind": EntryKind.TASK, "ticket": ticket, "new": first}
    offer = _latest_accepted_offer(ticket=ticket, agent=agent)
    if offer is not None:
        offer_id, amount, code = offer
        amount = money(amount)
        paid = _book(
            **entry,
            amount=amount,
            currency=code,
            offer_id=offer_id,
            assignment_id=assignment_id,
            reason=f"Ticket #{ticket.pk} resolved: offer {offer_id} at {amount} {code}.",
        )
        if paid is not None:
            return paid
        # Refused: the offer paid an earlier assignment, or this one is paid.
    code = pricing.currency()
    return _book(
        **entry,
        amount=money(pricing.base_rate(category=ticket.category, currency_code=code)),
        currency=code,
        offer_id=None,
        assignment_id=assignment_id,
        reason=f"Ticket #{ticket.pk} resolved: assigned without an offer, rate card price.",
    )


def on_ticket_resolved(*, ticket, agent: Agent) -> None:
    # Called with the ticket locked as it leaves ``assigned``: never reopened,
    # it has never been resolved, and nothing of it is paid.
    task_pay_book(ticket=ticket, agent=agent, first=ticket.reopen_count == 0)


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
