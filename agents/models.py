"""People: the user account (customers, agents, staff) and the agent's application.

Every field that changes a person's standing (an agent's ``status``) is changed
by a function in ``agents.services`` only, which writes an ``AgentReviewEvent``.
"""

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    AGENT = "agent", "Agent"
    STAFF = "staff", "Operations staff"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        # Sign-in names are e-mail addresses, matched without regard to case.
        return self.get(email__iexact=username)

    def _create(self, email, password, **extra):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("role", Role.CUSTOMER)
        return self._create(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(role=Role.STAFF, is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CUSTOMER)
    # The person's language, ISO 639-1; blank until they choose one.  Their pages
    # and e-mails use it when it is one of settings.LANGUAGES, and their tickets
    # are routed in it ("en" when blank).
    language = models.CharField(max_length=8, blank=True, default="")
    # IANA name the pages show times in; blank: an agent's ``Agent.time_zone``, else UTC.
    time_zone = models.CharField(max_length=64, blank=True, default="")
    is_active = models.BooleanField(default=True)
    # Access to the Django admin; true for operations staff.
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # When the person proved they read mail at ``email`` (a signed link); until
    # then nothing an integration opened may be linked to the account.
    email_verified_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self):
        return self.email

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else ""

    @property
    def is_operations(self) -> bool:
        return self.is_active and (self.role == Role.STAFF or self.is_superuser)

    @property
    def is_agent(self) -> bool:
        return self.role == Role.AGENT

    @property
    def is_customer(self) -> bool:
        return self.role == Role.CUSTOMER

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class Skill(models.Model):
    """The staff-managed catalog of skills; a ticket's category is one of these slugs."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class AgentStatus(models.TextChoices):
    APPLIED = "applied", _("Applied")
    IN_REVIEW = "in_review", _("In review")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    SUSPENDED = "suspended", _("Suspended")


class Cohort(models.TextChoices):
    STUDENT = "student", _("Student")
    RURAL = "rural", _("Rural")
    POWER_USER = "power_user", _("Power user")
    OTHER = "other", _("Other")


class Presence(models.TextChoices):
    ONLINE = "online", _("Online")
    AWAY = "away", _("Away")
    OFFLINE = "offline", _("Offline")


class Agent(models.Model):
    """An agent's application and standing; one per agent user.

    ``presence`` is the cheap current state that dispatch filters on; the
    history of every stretch is in ``PresenceInterval``.  Both change only in
    ``agents.presence``.
    """

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="agent")
    status = models.CharField(
        max_length=16, choices=AgentStatus.choices, default=AgentStatus.APPLIED, db_index=True
    )
    cohort = models.CharField(max_length=16, choices=Cohort.choices)
    skills = models.ManyToManyField(Skill, related_name="agents")
    country = models.CharField(max_length=2)
    time_zone = models.CharField(max_length=64)
    capacity = models.PositiveSmallIntegerField(default=2)
    motivation = models.TextField(blank=True, max_length=1000)
    applied_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(default=timezone.now)
    presence = models.CharField(max_length=8, choices=Presence.choices, default=Presence.OFFLINE)
    presence_changed_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Dispatch state.  ``active_tickets`` counts the agent's assigned tickets; it
    # changes only with a ticket entering or leaving ``assigned`` (tickets.services),
    # and the check constraint below makes "never above capacity" a database fact.
    active_tickets = models.PositiveSmallIntegerField(default=0)
    # Since when the agent has had nothing to do (ranking rule R4, longest idle).
    idle_since = models.DateTimeField(null=True, blank=True)
    # Offers in a row left to expire; three set the agent away.
    expired_streak = models.PositiveSmallIntegerField(default=0)
    # The quality score (0-100, ``tickets.selectors.agent_quality``) as last
    # computed, so that dispatch can rank by it in the database (rule R5).  It is
    # refreshed after each rating, resolve and reopen of the agent's, and hourly
    # for everyone as the window slides (``tickets.services.agent_quality_store``).
    # 75 is the formula's value for an agent with no history.
    quality_score = models.PositiveSmallIntegerField(default=75, db_default=75)

    class Meta:
        ordering = ["applied_at", "id"]
        indexes = [
            # "Who is online now" is dispatch's hottest read; keep it an index scan.
            models.Index(
                fields=["presence", "status"],
                name="agent_online_idx",
                condition=~models.Q(presence="offline"),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(capacity__gte=1) & models.Q(capacity__lte=20),
                name="agent_capacity_bounded",
            ),
            models.CheckConstraint(
                condition=models.Q(active_tickets__lte=models.F("capacity")),
                name="agent_never_above_capacity",
            ),
        ]

    def __str__(self):
        return f"{self.user.email} ({self.status})"

    @property
    def language_codes(self) -> list[str]:
        return [row.code for row in self.languages.all()]


class AgentLanguage(models.Model):
    # A row per language (not a JSON list) so that dispatch can filter by it on
    # SQLite and PostgreSQL alike, with an index.
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="languages")
    code = models.CharField(max_length=2)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "code"], name="agent_language_unique"),
        ]
        indexes = [models.Index(fields=["code", "agent"])]

    def __str__(self):
        return self.code


class AgentDocument(models.Model):
    """An identity document, stored under a random name in private storage."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="documents")
    storage_name = models.CharField(max_length=80, unique=True, editable=False)
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    original_name = models.CharField(max_length=200, blank=True)
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-uploaded_at"]

    def __str__(self):
        return f"{self.content_type} for {self.agent_id}"


class AgentReviewEvent(models.Model):
    """Audit row for every change of an agent's status: who, when, from, to, why."""

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="review_events")
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    from_status = models.CharField(max_length=16, choices=AgentStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=AgentStatus.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.agent_id}: {self.from_status or '-'} -> {self.to_status}"


class RealtimeTicket(models.Model):
    """A one-time, short-lived credential for opening a WebSocket (``?ticket=``).

    Only the SHA-256 of the value is stored; redeeming is a conditional update,
    so a ticket opens at most one connection even when two race.
    """

    digest = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"realtime ticket for {self.user_id}"


class PresenceInterval(models.Model):
    """One stretch of an agent being online or away: [started_at, ended_at).

    Offline is the absence of an open interval.  Attendance, engaged time and
    pay floors are computed from these rows, so they are never edited after
    they close; at most one is open per agent (partial unique index).
    """

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="presence_intervals")
    status = models.CharField(max_length=8, choices=Presence.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # Why the stretch ended: "agent", "suspended", "sweeper", "fatigue".
    ended_reason = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [models.Index(fields=["agent", "started_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["agent"],
                condition=models.Q(ended_at__isnull=True),
                name="presence_one_open_interval_per_agent",
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True)
                | models.Q(ended_at__gte=models.F("started_at")),
                name="presence_interval_not_inverted",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="offline"), name="presence_interval_not_offline"
            ),
        ]

    def __str__(self):
        return f"{self.agent_id} {self.status} {self.started_at:%Y-%m-%d %H:%M}"


class AgentConnection(models.Model):
    """One open agent WebSocket, so that a sweeper can tell a dead agent from a quiet one.

    A socket that closed cleanly has ``closed_at``; one whose worker died
    simply stops being seen (``last_seen_at`` grows old).
    """

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="connections")
    channel_name = models.CharField(max_length=200, unique=True)
    connected_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["agent", "closed_at"])]

    def __str__(self):
        return f"socket of {self.agent_id}"
