"""Where supply meets demand: shift slots and bookings, offers and pricing, the pay ledger.

Slots and bookings change only through ``marketplace.services.shifts``; every
change writes a ``ShiftEvent``.  The rules that matter most are also database
constraints (see docs/architecture.md, "Shifts").
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from agents.models import Agent, Skill


class SlotStatus(models.TextChoices):
    PUBLISHED = "published", "Published"
    CANCELLED = "cancelled", "Cancelled"


class IncentiveKind(models.TextChoices):
    # A fixed amount for attending the slot.
    BONUS = "bonus", "Attendance bonus"
    # Pay for time online in the slot is topped up to at least this much per hour.
    HOURLY_MINIMUM = "hourly_minimum", "Guaranteed hourly minimum"


class ShiftSlot(models.Model):
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    headcount = models.PositiveIntegerField()
    # Places held by bookings that are booked, attended or no_show; kept in step
    # by the booking services under the slot's row lock, and bounded by the
    # check constraint below, so the database itself refuses an overbooking.
    booked_count = models.PositiveIntegerField(default=0)
    language = models.CharField(max_length=2, blank=True)
    skill = models.ForeignKey(
        Skill, null=True, blank=True, on_delete=models.PROTECT, related_name="shift_slots"
    )
    incentive_kind = models.CharField(max_length=16, choices=IncentiveKind.choices, blank=True)
    incentive_amount = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    incentive_currency = models.CharField(max_length=3, blank=True)
    status = models.CharField(
        max_length=12, choices=SlotStatus.choices, default=SlotStatus.PUBLISHED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["status", "starts_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="slot_ends_after_start"
            ),
            models.CheckConstraint(condition=models.Q(headcount__gte=1), name="slot_headcount_min"),
            models.CheckConstraint(
                condition=models.Q(booked_count__lte=models.F("headcount")),
                name="slot_never_overbooked",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(
                        incentive_kind="",
                        incentive_amount__isnull=True,
                        incentive_currency="",
                    )
                    | models.Q(
                        incentive_kind__in=IncentiveKind.values,
                        incentive_amount__gt=0,
                    )
                    & ~models.Q(incentive_currency="")
                ),
                name="slot_incentive_complete",
            ),
        ]

    def __str__(self):
        return f"{self.starts_at:%Y-%m-%d %H:%M}-{self.ends_at:%H:%M} x{self.headcount}"

    @property
    def duration_seconds(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds())

    @property
    def free_places(self) -> int:
        return max(self.headcount - self.booked_count, 0) if self.is_open else 0

    @property
    def is_open(self) -> bool:
        return self.status == SlotStatus.PUBLISHED

    @property
    def fill_rate(self) -> float:
        return round(self.booked_count / self.headcount, 4) if self.headcount else 0.0


class BookingStatus(models.TextChoices):
    BOOKED = "booked", _("Booked")
    CANCELLED = "cancelled", _("Cancelled")
    LATE_CANCELLED = "late_cancelled", _("Cancelled late")
    ATTENDED = "attended", _("Attended")
    NO_SHOW = "no_show", _("No-show")


# Bookings that hold a place in their slot (and count against overlap and caps).
HOLDING = (BookingStatus.BOOKED, BookingStatus.ATTENDED, BookingStatus.NO_SHOW)


class ShiftBooking(models.Model):
    slot = models.ForeignKey(ShiftSlot, on_delete=models.PROTECT, related_name="bookings")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="shift_bookings")
    status = models.CharField(
        max_length=16, choices=BookingStatus.choices, default=BookingStatus.BOOKED
    )
    # Copied from the slot so that overlap is one indexed range test per agent
    # (and an exclusion constraint on PostgreSQL, triggers on SQLite: migrations 0002, 0008).
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    booked_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Set when attendance is settled: seconds online within the slot.
    online_seconds = models.PositiveIntegerField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [
            models.Index(fields=["agent", "status", "starts_at"]),
            models.Index(fields=["status", "ends_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "slot"],
                condition=models.Q(status__in=HOLDING),
                name="booking_one_active_per_agent_and_slot",
            ),
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="booking_ends_after_start",
            ),
        ]

    def __str__(self):
        return f"{self.agent_id} in slot {self.slot_id}: {self.status}"


class ShiftEventKind(models.TextChoices):
    SLOT_PUBLISHED = "slot_published", "Slot published"
    SLOT_CANCELLED = "slot_cancelled", "Slot cancelled"
    BOOKED = "booked", "Booked"
    CANCELLED = "cancelled", "Cancelled by the agent"
    LATE_CANCELLED = "late_cancelled", "Cancelled late by the agent"
    RELEASED = "released", "Released by a slot cancellation"
    ATTENDED = "attended", "Attended"
    NO_SHOW = "no_show", "No-show"


class ShiftEvent(models.Model):
    """Audit row for every change to a slot or a booking: who, what, when."""

    kind = models.CharField(max_length=16, choices=ShiftEventKind.choices)
    slot = models.ForeignKey(ShiftSlot, on_delete=models.PROTECT, related_name="events")
    booking = models.ForeignKey(
        ShiftBooking, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.kind} slot {self.slot_id}"


class StaffingPublication(models.Model):
    """Audit row of one "publish what is missing": who, when, which days, what it added.

    Each slot it created also has its own ``slot_published`` ``ShiftEvent``,
    whose ``detail`` names this row.  ``detail`` keeps the inputs the required
    headcounts came from (handle time, capacity, goal, forecast weeks).
    """

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    first_day = models.DateField()
    days = models.PositiveSmallIntegerField()
    slots_created = models.PositiveIntegerField()
    headcount_added = models.PositiveIntegerField()
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.first_day} +{self.days}d: {self.slots_created} slots by {self.actor_id}"


# --- dispatch and pricing ------------------------------------------------------


class OfferStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"


class DeclineReason(models.TextChoices):
    # Keeps the agent off the ticket for good (rules.passed); the floor shows it.
    NOT_MY_AREA = "not_my_area", _("Not my area")
    BUSY = "busy", _("Busy")
    OTHER = "other", _("Other")


class Offer(models.Model):
    """A ticket offered to one agent, with the pay for the task fixed in.

    Changes only through ``marketplace.services.dispatch``.  The price is the
    rate card's amount for the category times the surge multiplier in force
    when the offer was made, plus the waiting bonus of a ticket past its
    target; later changes of either never touch it.
    """

    # Each leads an index in Meta (offer_ticket_agent, offer_agent_recent): no
    # index of its own, written on every offer and answer for nothing.
    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.PROTECT, related_name="offers", db_index=False
    )
    agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, related_name="offers", db_index=False
    )
    status = models.CharField(
        max_length=10, choices=OfferStatus.choices, default=OfferStatus.PENDING
    )
    base_amount = models.DecimalField(max_digits=10, decimal_places=2)
    surge_multiplier = models.DecimalField(max_digits=4, decimal_places=2)
    # Added for a ticket that waited past its target (the escalation ladder's
    # first rung); part of ``amount``, and so of the task's pay.
    waiting_bonus = models.DecimalField(max_digits=10, decimal_places=2, default=0, db_default=0)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # When the agent's console acknowledged the offer on screen (``offer.seen``):
    # only an offer seen and left to expire counts toward setting the agent away.
    seen_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    # Why it ended: the agent's note on a decline, or the platform's reason
    # ("not answered in time", "agent_offline"…) when the agent did not answer.
    reason = models.CharField(max_length=200, blank=True)
    # The agent's reason for a decline, when they gave one.
    decline_reason = models.CharField(
        max_length=16, choices=DeclineReason.choices, blank=True, default="", db_default=""
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["expires_at"],
                name="offer_pending_expiry",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["ticket", "agent"], name="offer_ticket_agent"),
            models.Index(fields=["agent", "-created_at"], name="offer_agent_recent"),
        ]
        constraints = [
            # Invariant: a ticket is offered to one agent at a time.
            models.UniqueConstraint(
                fields=["ticket"],
                condition=models.Q(status="pending"),
                name="offer_one_pending_per_ticket",
            ),
            # Rule E6: an agent has at most one offer to answer at a time.
            models.UniqueConstraint(
                fields=["agent"],
                condition=models.Q(status="pending"),
                name="offer_one_pending_per_agent",
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gte=0)
                & models.Q(base_amount__gte=0)
                & models.Q(waiting_bonus__gte=0),
                name="offer_amount_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(surge_multiplier__gte=1), name="offer_surge_at_least_one"
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="offer_expires_after_creation",
            ),
        ]

    def __str__(self):
        return f"offer {self.pk}: ticket {self.ticket_id} to agent {self.agent_id} ({self.status})"


class RateCard(models.Model):
    """What a task in a category pays, per currency.  Staff manage it."""

    category = models.ForeignKey(
        Skill,
        to_field="slug",
        db_column="category",
        on_delete=models.PROTECT,
        related_name="rates",
    )
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        ordering = ["category", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["category", "currency"], name="rate_card_unique"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="rate_positive"),
        ]

    def __str__(self):
        return f"{self.category_id}: {self.amount} {self.currency}"


class PricingEvent(models.Model):
    """Audit row for each change of the rate card."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    category = models.CharField(max_length=40)
    currency = models.CharField(max_length=3)
    old_amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    new_amount = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.category} {self.old_amount} -> {self.new_amount} {self.currency}"


# --- pay: the ledger, pay periods and payroll exports ----------------------------


class PayPeriodStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")


class PayPeriod(models.Model):
    """One pay week, ``[starts_at, ends_at)``.  Created as needed by ``ledger.period_for``.

    Closing (``payroll.pay_period_close``) adds the engaged-time floor top-ups,
    then freezes the period: no entry is ever added to a closed period (the
    service locks the period row, and a trigger refuses it too).
    """

    starts_at = models.DateTimeField(unique=True)
    ends_at = models.DateTimeField()
    status = models.CharField(
        max_length=8, choices=PayPeriodStatus.choices, default=PayPeriodStatus.OPEN
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Snapshot taken when closing: entries and totals per currency, for audit
    # and to prove later that a closed period never changed.
    entry_count = models.PositiveIntegerField(null=True, blank=True)
    totals = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="pay_period_not_inverted",
            ),
            models.CheckConstraint(
                condition=models.Q(status="open", closed_at__isnull=True)
                | models.Q(status="closed", closed_at__isnull=False),
                name="pay_period_closed_has_time",
            ),
        ]

    def __str__(self):
        return f"{self.starts_at:%Y-%m-%d} ({self.status})"

    @property
    def is_closed(self) -> bool:
        return self.status == PayPeriodStatus.CLOSED


class EntryKind(models.TextChoices):
    TASK = "task", _("Task")
    REVERSAL = "reversal", _("Reversal")
    QUALITY_BONUS = "quality_bonus", _("Quality bonus")
    SHIFT_INCENTIVE = "shift_incentive", _("Shift incentive")
    EARNINGS_FLOOR = "earnings_floor", _("Earnings floor top-up")
    ADJUSTMENT = "adjustment", _("Adjustment")


class LedgerEntry(models.Model):
    """One amount an agent earns or loses.  Insert-only.

    Written only by ``marketplace.services.ledger`` (and the floor in
    ``payroll``).  Nothing in the code updates or deletes a row, the admin is
    read-only, and a trigger refuses UPDATE and, on PostgreSQL, DELETE
    (migrations 0005 and 0008).  A correction is a new entry: a ``reversal`` or
    an ``adjustment``.
    """

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="ledger_entries")
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    period = models.ForeignKey(PayPeriod, on_delete=models.PROTECT, related_name="entries")
    # What caused it; which of these are set depends on the kind.
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    offer = models.ForeignKey(
        Offer, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    # The ``assigned`` TicketEvent a task entry pays for: one assignment, one task pay.
    assignment = models.ForeignKey(
        "tickets.TicketEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    booking = models.ForeignKey(
        ShiftBooking, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rating = models.ForeignKey(
        "tickets.Rating", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    reason = models.TextField(blank=True, max_length=1000)
    created_at = models.DateTimeField(default=timezone.now)
    # The staff member for an adjustment or a close; None for automatic entries.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        indexes = [
            # Payroll: one period's entries grouped by agent (index-only for the export).
            models.Index(
                fields=["period", "agent", "currency", "kind", "amount"], name="ledger_period_agent"
            ),
            models.Index(fields=["agent", "-created_at"], name="ledger_agent_recent"),
            models.Index(fields=["ticket"], name="ledger_ticket"),
        ]
        constraints = [
            # One task pay per accepted offer and per assignment, whatever the concurrency.
            models.UniqueConstraint(
                fields=["offer"], condition=models.Q(kind="task"), name="ledger_one_task_per_offer"
            ),
            models.UniqueConstraint(
                fields=["assignment"],
                condition=models.Q(kind="task"),
                name="ledger_one_task_per_assignment",
            ),
            models.UniqueConstraint(
                fields=["reverses"],
                condition=models.Q(kind="reversal"),
                name="ledger_reversed_once",
            ),
            models.UniqueConstraint(
                fields=["rating"],
                condition=models.Q(kind="quality_bonus"),
                name="ledger_one_bonus_per_rating",
            ),
            models.UniqueConstraint(
                fields=["booking"],
                condition=models.Q(kind="shift_incentive"),
                name="ledger_one_incentive_per_booking",
            ),
            models.UniqueConstraint(
                fields=["agent", "period"],
                condition=models.Q(kind="earnings_floor"),
                name="ledger_one_floor_per_agent_and_period",
            ),
            # The sign of each kind, and the cause each kind must name.
            models.CheckConstraint(
                condition=(
                    models.Q(kind="task", amount__gte=0, assignment__isnull=False)
                    | models.Q(kind="reversal", amount__lte=0, reverses__isnull=False)
                    | models.Q(kind="quality_bonus", amount__gt=0, rating__isnull=False)
                    | models.Q(kind="shift_incentive", amount__gt=0, booking__isnull=False)
                    | models.Q(kind="earnings_floor", amount__gt=0)
                    | (
                        models.Q(kind="adjustment", created_by__isnull=False)
                        & ~models.Q(amount=0)
                        & ~models.Q(reason="")
                    )
                ),
                name="ledger_kind_sign_and_cause",
            ),
        ]

    def __str__(self):
        return f"{self.kind} {self.amount} {self.currency} for agent {self.agent_id}"


class PayrollExport(models.Model):
    """Audit row for each payroll export: who, when, and the SHA-256 of the bytes."""

    period = models.ForeignKey(PayPeriod, on_delete=models.PROTECT, related_name="exports")
    sha256 = models.CharField(max_length=64)
    row_count = models.PositiveIntegerField()
    byte_count = models.PositiveBigIntegerField()
    # "api", "admin", "command" or "ops" (the floor).
    channel = models.CharField(max_length=16)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"export of {self.period_id}: {self.sha256[:12]}"


class PayrollJobKind(models.TextChoices):
    CLOSE = "close", "Close the period"
    EXPORT = "export", "Prepare the payroll CSV"


class PayrollJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


ACTIVE_JOB = (PayrollJobStatus.QUEUED, PayrollJobStatus.RUNNING)


class PayrollJob(models.Model):
    """Long payroll work run in the background, with its progress for the floor to poll.

    Changed only by ``marketplace.services.payroll_jobs``.  A close runs as one
    transaction, so its progress is its state (queued, running since, done); an
    export writes the CSV to private storage and counts the rows written as it
    goes (``rows_done`` of ``rows_total``), then links its ``PayrollExport``.
    """

    period = models.ForeignKey(PayPeriod, on_delete=models.PROTECT, related_name="jobs")
    kind = models.CharField(max_length=8, choices=PayrollJobKind.choices)
    status = models.CharField(
        max_length=8, choices=PayrollJobStatus.choices, default=PayrollJobStatus.QUEUED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # The last sign of life from the worker: claimed, or some rows written.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    rows_done = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    # An export's file in private storage, and the audit row of its bytes.
    file_name = models.CharField(max_length=120, blank=True)
    export = models.OneToOneField(
        PayrollExport, null=True, blank=True, on_delete=models.PROTECT, related_name="job"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One close and one export at a time per period: a second click joins the first.
            models.UniqueConstraint(
                fields=["period", "kind"],
                condition=models.Q(status__in=["queued", "running"]),
                name="payroll_job_one_active_per_kind",
            ),
            models.CheckConstraint(
                condition=models.Q(rows_total__isnull=True)
                | models.Q(rows_done__lte=models.F("rows_total")),
                name="payroll_job_progress_bounded",
            ),
        ]

    def __str__(self):
        return f"{self.kind} of period {self.period_id} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_JOB

    @property
    def progress(self) -> float | None:
        """0..1 when the amount of work is known, else None (the page shows a spinner)."""
        if self.status == PayrollJobStatus.DONE:
            return 1.0
        if not self.rows_total:
            return None
        return min(1.0, self.rows_done / self.rows_total)
