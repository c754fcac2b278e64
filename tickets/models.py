"""What customers need: tickets, their conversation, hand-off, ratings and feedback.

A ticket's ``status`` (and the fields that travel with it: the assignee and
the timestamps) is changed by a function in ``tickets.services`` only, which
writes a ``TicketEvent``.  Integrations (the company's chatbot or CRM) are
``Integration`` rows holding hashed ``IntegrationApiKey`` credentials.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Bounds on what a client may send; the services check them and answer 400.
SUBJECT_MAX = 200
BODY_MAX = 10_000
MESSAGE_MAX = 5_000
TRANSCRIPT_MAX_TURNS = 200
TRANSCRIPT_TEXT_MAX = 4_000
TRANSCRIPT_MAX_BYTES = 64 * 1024
SUMMARY_MAX = 2_000
INTENT_MAX = 100
COMMENT_MAX = 2_000
FEEDBACK_TEXT_MAX = 2_000
FEEDBACK_AREA_MAX = 60


class TicketStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    OFFERED = "offered", _("Offered")
    ASSIGNED = "assigned", _("Assigned")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")
    CANCELLED = "cancelled", _("Cancelled")


# A ticket in one of these is waiting for a person (it has a place in line).
WAITING = (TicketStatus.QUEUED, TicketStatus.OFFERED)


class Rung(models.IntegerChoices):
    """The escalation ladder of a ticket waiting past its target, climbed in this order.

    ``Ticket.escalation`` holds the highest rung reached; when each is reached
    is ``marketplace.services.escalation``'s policy (``ESCALATION_LADDER``).
    """

    NONE = 0, "Not escalated"
    WAITING_BONUS = 1, "Waiting bonus"
    STAFF_ALERT = 2, "Staff alerted"
    CUSTOMER_NOTICE = 3, "Customer told"
    WIDER_POOL = 4, "Wider pool"


class Priority(models.TextChoices):
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


# Higher first in line.
PRIORITY_RANK = {Priority.URGENT: 3, Priority.HIGH: 2, Priority.NORMAL: 1}


def priority_rank() -> models.Case:
    """A ticket's priority as a number, higher first: the queue's first key.

    The queue's index (``ticket_queue_order``) is built on this expression, and
    ``queue_order`` orders by it, so the index serves that order.
    """
    return models.Case(
        *[models.When(priority=p, then=models.Value(r)) for p, r in PRIORITY_RANK.items()],
        output_field=models.IntegerField(),
    )


def queue_order() -> tuple:
    """The order tickets are served in: priority, then time in line, then id.

    The one definition of "first in line": dispatch offers tickets in it and
    a waiting ticket's place (``tickets.selectors``) counts the tickets before
    it in it.  ``ticket_queue_order`` indexes it for the queued tickets.  The
    functions below write the same order, from the same ``PRIORITY_RANK``, for
    hand-written statements; a test holds the two forms to each other.
    """
    return (priority_rank().desc(), models.F("queued_at").asc(), models.F("id").asc())


def priority_rank_sql(priority: str) -> str:
    """``priority_rank`` for hand-written statements, of the SQL ``priority``.

    In the form Django writes ``priority_rank`` (a searched CASE without ELSE),
    so that PostgreSQL serves an ORDER BY on it from the queue's index
    (``ticket_queue_order``); a test reads the plan.
    """
    whens = " ".join(
        f"WHEN {priority} = '{value.value}' THEN {int(rank)}"
        for value, rank in PRIORITY_RANK.items()
    )
    return f"CASE {whens} END"


def queue_order_sql(alias: str) -> str:
    """``queue_order`` for a hand-written statement about the tickets ``alias``."""
    return f"{priority_rank_sql(f'{alias}.priority')} DESC, {alias}.queued_at ASC, {alias}.id ASC"


def ahead_sql(alias: str, *, priority: str, queued_at: str, ticket: str) -> str:
    """The tickets ``alias`` that come before a ticket in ``queue_order``, as SQL.

    That ticket's priority, ``queued_at`` and id are the SQL ``priority``,
    ``queued_at`` and ``ticket``: parameters, or columns of another alias.
    """
    return (
        f"({priority_rank_sql(f'{alias}.priority')} > {priority_rank_sql(priority)}"
        f" OR ({alias}.priority = {priority} AND ({alias}.queued_at < {queued_at}"
        f" OR ({alias}.queued_at = {queued_at} AND {alias}.id < {ticket}))))"
    )


class Integration(models.Model):
    """A system that opens tickets on behalf of customers: a chatbot, a CRM."""

    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.name


class IntegrationApiKey(models.Model):
    """A credential for ``Authorization: Api-Key <key>``.

    The key is shown once when created.  Only a short public ``prefix`` (for
    lookup) and the SHA-256 of the whole key are stored.
    """

    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.integration.name}: {self.prefix}…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IntegrationCustomer(models.Model):
    """Who an integration's own customer id stands for.

    An integration's customers are known by ``(integration, external_id)``
    alone, each integration in a namespace of its own, and each gets an account
    of its own that cannot sign in.  The ``email`` an integration gives is what
    it claims, never a key: a person who verified that address may link the
    identity to their own account (``tickets.services.customer_link``), which
    moves its tickets there; ``previous_customer`` keeps the account it had.
    """

    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="customers")
    external_id = models.CharField(max_length=200)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="external_ids"
    )
    # Lower case; empty when the integration gave none.
    email = models.EmailField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    linked_at = models.DateTimeField(null=True, blank=True)
    previous_customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "external_id"], name="integration_customer_unique"
            )
        ]
        indexes = [
            models.Index(
                fields=["email"],
                name="integration_customer_email",
                condition=~models.Q(email=""),
            )
        ]

    def __str__(self):
        return f"{self.integration_id}:{self.external_id}"

    @property
    def is_linked(self) -> bool:
        return self.linked_at is not None


class Ticket(models.Model):
    # A foreign key that leads one of the indexes in Meta gets no index of its
    # own: each would be written on every insert and status change for nothing.
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tickets", db_index=False
    )
    # Set when an integration opened the ticket; integrations see only these.
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.PROTECT, related_name="tickets"
    )
    subject = models.CharField(max_length=SUBJECT_MAX)
    body = models.TextField(max_length=BODY_MAX)
    language = models.CharField(max_length=2)
    # A skill slug from the catalog (agents.Skill); dispatch matches on it.
    category = models.CharField(max_length=40)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(
        max_length=16, choices=TicketStatus.choices, default=TicketStatus.QUEUED
    )

    # The bot hand-off: what the customer already told the chatbot.
    handoff_transcript = models.JSONField(default=list, blank=True)
    handoff_summary = models.TextField(blank=True, max_length=SUMMARY_MAX)
    handoff_intent = models.CharField(blank=True, max_length=INTENT_MAX)

    assigned_agent = models.ForeignKey(
        "agents.Agent",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tickets",
        db_index=False,  # leads ticket_agent_status
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    # When the ticket joined the line it is waiting in; kept on a requeue so
    # that a customer whose agent dropped out does not go to the back.
    queued_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reopen_count = models.PositiveSmallIntegerField(default=0)
    # The highest rung of the escalation ladder reached while waiting (Rung);
    # back to none when the customer reopens the ticket.
    escalation = models.PositiveSmallIntegerField(
        choices=Rung.choices, default=Rung.NONE, db_default=Rung.NONE
    )
    created_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=TicketStatus.ASSIGNED) | Q(assigned_agent__isnull=False),
                name="ticket_assigned_has_agent",
            ),
            models.CheckConstraint(
                condition=~Q(status=TicketStatus.QUEUED) | Q(assigned_agent__isnull=True),
                name="ticket_queued_has_no_agent",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=WAITING) | Q(queued_at__isnull=False),
                name="ticket_waiting_has_queued_at",
            ),
        ]
        indexes = [
            # The line: waiting tickets of one language and category by age.
            models.Index(
                fields=["language", "category", "queued_at"],
                condition=Q(status__in=WAITING),
                name="ticket_waiting_lane",
            ),
            # The queue: queued tickets in dispatch order (priority, then time in
            # line, then id).  The pull walks it from the head and stops at the
            # first tickets the freed agent can serve (marketplace.services.dispatch).
            models.Index(
                priority_rank().desc(),
                models.F("queued_at"),
                models.F("id"),
                condition=Q(status=TicketStatus.QUEUED),
                name="ticket_queue_order",
            ),
            # The lanes' service rate (queue ETA): a lane's latest assignments,
            # read newest first (tickets.selectors.served_in_lane).
            models.Index(
                fields=["language", "category", "assigned_at"],
                condition=Q(assigned_at__isnull=False),
                name="ticket_lane_served",
            ),
            models.Index(fields=["customer", "-created_at"], name="ticket_customer_recent"),
            models.Index(fields=["assigned_agent", "status"], name="ticket_agent_status"),
            models.Index(
                fields=["resolved_at"],
                condition=Q(status=TicketStatus.RESOLVED),
                name="ticket_resolved_age",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.subject}"

    @property
    def is_waiting(self) -> bool:
        return self.status in WAITING

    @property
    def has_handoff(self) -> bool:
        return bool(self.handoff_transcript or self.handoff_summary or self.handoff_intent)


class EventKind(models.TextChoices):
    STATUS = "status", "Status change"
    # A rung of the escalation ladder reached; from and to are the status it waits in.
    ESCALATION = "escalation", "Escalation"
    # The customer continued in another language; from and to as above.
    LANGUAGE = "language", "Language change"


class TicketEvent(models.Model):
    """Audit row for every status change, and every escalation and language change
    of a waiting ticket (``kind``): who, when, from, to, why.

    ``agent`` is the agent the change concerns (assigned, resolved by, taken
    from): quality figures (reopen rate) and pay read it.
    """

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Set instead of ``actor`` when an integration made the change.
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    agent = models.ForeignKey(
        "agents.Agent",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # leads the (agent, to_status, created_at) index
    )
    kind = models.CharField(
        max_length=12,
        choices=EventKind.choices,
        default=EventKind.STATUS,
        db_default=EventKind.STATUS,
    )
    from_status = models.CharField(max_length=16, choices=TicketStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=TicketStatus.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["agent", "to_status", "created_at"]),
        ]

    def __str__(self):
        return f"#{self.ticket_id}: {self.from_status or '-'} -> {self.to_status}"


class AuthorRole(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    AGENT = "agent", "Agent"
    STAFF = "staff", "Operations staff"


class Message(models.Model):
    """One line of the conversation.  The id is the resync cursor (``since``)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    author_role = models.CharField(max_length=16, choices=AuthorRole.choices)
    body = models.TextField(max_length=MESSAGE_MAX)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["ticket", "id"], name="message_ticket_cursor")]

    def __str__(self):
        return f"#{self.ticket_id} {self.author_role}: {self.body[:40]}"


class Rating(models.Model):
    """The customer's rating of a resolved ticket; one per ticket."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="rating")
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="ratings")
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True, max_length=COMMENT_MAX)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=1) & Q(score__lte=5), name="rating_score_1_to_5"
            )
        ]
        indexes = [models.Index(fields=["agent", "-created_at"], name="rating_agent_recent")]

    def __str__(self):
        return f"#{self.ticket_id}: {self.score}"


class FeedbackKind(models.TextChoices):
    BUG = "bug", _("Bug")
    CONFUSING = "confusing", _("Confusing")
    FEATURE_REQUEST = "feature_request", _("Feature request")


class Feedback(models.Model):
    """Product feedback an agent tags a ticket with, for the product team."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="feedback")
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="feedback")
    area = models.SlugField(max_length=FEEDBACK_AREA_MAX)
    kind = models.CharField(max_length=16, choices=FeedbackKind.choices)
    text = models.TextField(max_length=FEEDBACK_TEXT_MAX)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "area", "-created_at"])]

    def __str__(self):
        return f"{self.kind} in {self.area}"


IDEMPOTENCY_KEY_MAX = 200


class IdempotencyKey(models.Model):
    """A client's ``Idempotency-Key`` on ticket creation, kept for 24 hours.

    ``scope`` names the caller (``user:7``, ``integration:3``) so that two
    callers can never collide.  The unique index is what serialises two
    retries racing: the second insert waits for the first transaction and
    then fails, and the caller answers from the committed row.
    """

    scope = models.CharField(max_length=40)
    key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX)
    request_hash = models.CharField(max_length=64)
    ticket = models.ForeignKey(Ticket, null=True, on_delete=models.CASCADE, related_name="+")
    response_status = models.PositiveSmallIntegerField(default=201)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_unique")
        ]

    def __str__(self):
        return f"{self.scope}:{self.key}"
