"""Writes about tickets: opening, the lifecycle, the conversation, ratings, feedback.

One function per transition.  Each locks the ticket row, refuses a change the
current status does not allow (``InvalidTransition``, 409), writes a
``TicketEvent`` (who, when, from, to, why) and schedules pushes after commit.

The state machine (``TRANSITIONS``; docs/architecture.md has the table)::

    open -> queued -> offered -> assigned -> resolved -> closed (after the reopen window)
    queued | offered -> assigned          offered | assigned -> queued (requeue)
    queued | offered -> cancelled         resolved -> queued (reopen, within the window)

Callers are a ``User`` or an ``IntegrationPrincipal`` (``tickets.principals``).
"""

import contextlib
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from agents import catalog, validators
from agents.models import Agent, AgentStatus, Role, User
from config import effects, prepared, rows
from config.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    TooMany,
)
from tickets import events, selectors, tasks
from tickets.models import (
    BODY_MAX,
    COMMENT_MAX,
    FEEDBACK_TEXT_MAX,
    IDEMPOTENCY_KEY_MAX,
    INTENT_MAX,
    MESSAGE_MAX,
    SUBJECT_MAX,
    SUMMARY_MAX,
    TRANSCRIPT_MAX_BYTES,
    TRANSCRIPT_MAX_TURNS,
    TRANSCRIPT_TEXT_MAX,
    WAITING,
    AuthorRole,
    EventKind,
    Feedback,
    FeedbackKind,
    IdempotencyKey,
    Integration,
    IntegrationApiKey,
    IntegrationCustomer,
    Message,
    Priority,
    Rating,
    Rung,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from tickets.principals import is_integration, scope_of


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key came with a different request body."""

    code = "idempotency_key_reused"
    status_code = 422


def _invalid(field_name: str, message: str, code: str | None = None) -> InvalidInput:
    return InvalidInput(message, code=code, fields={field_name: [message]})


# --- opening ----------------------------------------------------------------


@dataclass(frozen=True)
class Handoff:
    transcript: list = field(default_factory=list)
    summary: str = ""
    intent: str = ""


@dataclass(frozen=True)
class NewTicket:
    subject: str
    body: str
    category: str = "general"
    language: str | None = None
    priority: str = Priority.NORMAL
    handoff: Handoff | None = None


@dataclass(frozen=True)
class CustomerRef:
    """How an integration names the customer it opens a ticket for."""

    email: str = ""
    external_id: str = ""
    name: str = ""


@dataclass(frozen=True)
class Opened:
    ticket: Ticket
    # False when an Idempotency-Key replayed an earlier request.
    created: bool
    status_code: int = 201


def _check_handoff(handoff: Handoff | None) -> Handoff:
    if handoff is None:
        return Handoff()
    transcript = handoff.transcript or []
    if not isinstance(transcript, list):
        raise _invalid("handoff.transcript", _("The transcript is a list of turns."))
    if len(transcript) > TRANSCRIPT_MAX_TURNS:
        raise _invalid(
            "handoff.transcript",
            _("The transcript may hold at most %(n)d turns.") % {"n": TRANSCRIPT_MAX_TURNS},
            code="transcript_too_long",
        )
    turns = []
    for n, turn in enumerate(transcript):
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "bot"):
            raise _invalid(
                "handoff.transcript", _("Turn %(n)d: role must be 'user' or 'bot'.") % {"n": n + 1}
            )
        text = str(turn.get("text") or "").strip()
        if not text:
            raise _invalid("handoff.transcript", _("Turn %(n)d: text is required.") % {"n": n + 1})
        if len(text) > TRANSCRIPT_TEXT_MAX:
            raise _invalid(
                "handoff.transcript",
                _("Turn %(n)d: keep each text under %(max)d characters.")
                % {"n": n + 1, "max": TRANSCRIPT_TEXT_MAX},
                code="transcript_too_long",
            )
        at = turn.get("at")
        turns.append({"role": turn["role"], "text": text, "at": str(at) if at else None})
    size = len(json.dumps(turns, ensure_ascii=False).encode())
    if size > TRANSCRIPT_MAX_BYTES:
        raise _invalid(
            "handoff.transcript",
            _("The transcript is %(size)d bytes; the limit is %(max)d.")
            % {"size": size, "max": TRANSCRIPT_MAX_BYTES},
            code="transcript_too_large",
        )
    summary = (handoff.summary or "").strip()
    if len(summary) > SUMMARY_MAX:
        raise _invalid(
            "handoff.summary",
            _("Keep the summary under %(max)d characters.") % {"max": SUMMARY_MAX},
        )
    intent = (handoff.intent or "").strip()
    if len(intent) > INTENT_MAX:
        raise _invalid(
            "handoff.intent", _("Keep the intent under %(max)d characters.") % {"max": INTENT_MAX}
        )
    return Handoff(transcript=turns, summary=summary, intent=intent)


def _check_new_ticket(new: NewTicket, *, integration: bool) -> NewTicket:
    errors: dict[str, list[str]] = {}
    subject = (new.subject or "").strip()
    body = (new.body or "").strip()
    if not subject:
        errors["subject"] = [_("This field is required.")]
    elif len(subject) > SUBJECT_MAX:
        errors["subject"] = [_("Keep the subject under %(max)d characters.") % {"max": SUBJECT_MAX}]
    if not body:
        errors["body"] = [_("This field is required.")]
    elif len(body) > BODY_MAX:
        errors["body"] = [_("Keep the description under %(max)d characters.") % {"max": BODY_MAX}]
    category = (new.category or "general").strip().lower()
    if not catalog.is_active_skill(category):
        errors["category"] = [
            _("Unknown category '%(category)s'; use a skill from the catalog.")
            % {"category": category}
        ]
    language = (new.language or "").strip().lower() or None
    if language is not None and language not in validators.language_codes():
        errors["language"] = [
            _("'%(code)s' is not an ISO 639-1 language code.") % {"code": language}
        ]
    if new.priority not in Priority.values:
        errors["priority"] = [
            _("Choose one of: %(values)s.") % {"values": ", ".join(Priority.values)}
        ]
    elif new.priority == Priority.URGENT and not integration:
        errors["priority"] = [_("Only integrations may open urgent tickets.")]
    if errors:
        raise InvalidInput(next(iter(errors.values()))[0], fields=errors)
    return NewTicket(
        subject=subject,
        body=body,
        category=category,
        language=language,
        priority=new.priority,
        handoff=_check_handoff(new.handoff),
    )


def _request_hash(new: NewTicket, customer: CustomerRef | None) -> str:
    payload = {"ticket": asdict(new), "customer": asdict(customer) if customer else None}
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim_idempotency_key(
    *, scope: str, key: str, request_hash: str
) -> tuple[IdempotencyKey | None, IdempotencyKey | None]:
    """(our new claim, None) or (None, the earlier request's record).

    Called inside the opening transaction, first.  When two retries race, the
    second INSERT blocks on the unique index until the first commits, then
    fails; READ COMMITTED lets the next statement see the committed row.
    """
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise _invalid(
            "Idempotency-Key",
            _("Keep the Idempotency-Key under %(max)s characters.") % {"max": IDEMPOTENCY_KEY_MAX},
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        # A control character (a NUL: PostgreSQL stores none) is never part of a key.
        raise _invalid("Idempotency-Key", _("Use printable characters in the Idempotency-Key."))
    now = timezone.now()
    # An expired key is free again.
    IdempotencyKey.objects.filter(scope=scope, key=key, expires_at__lte=now).delete()
    ttl = timedelta(hours=settings.HUMANLINE["IDEMPOTENCY_KEY_TTL_HOURS"])
    try:
        with transaction.atomic():
            claim = IdempotencyKey.objects.create(
                scope=scope,
                key=key,
                request_hash=request_hash,
                created_at=now,
                expires_at=now + ttl,
            )
        return claim, None
    except IntegrityError:
        earlier = IdempotencyKey.objects.select_related("ticket").get(scope=scope, key=key)
        return None, earlier


def _synthetic_email(integration: Integration, external_id: str) -> str:
    digest = hashlib.sha256(f"{integration.pk}:{external_id}".encode()).hexdigest()[:24]
    return f"ext-{integration.pk}-{digest}@customers.humanline.invalid"


def _create_customer(*, email: str, name: str, language: str) -> User:
    try:
        with transaction.atomic():
            return User.objects.create_user(
                email=email, password=None, name=name, language=language, role=Role.CUSTOMER
            )
    except IntegrityError:
        # Another request created this customer a moment ago.
        return User.objects.get(email__iexact=email)


def _integration_customer(*, integration: Integration, ref: CustomerRef, language: str) -> User:
    """The customer an integration names, known by ``(integration, external_id)``.

    Never found by e-mail: an address is only what the integration claims, and
    anyone may sign up with anyone's address.  A new identity gets an account of
    its own that cannot sign in; the person who verifies the claimed address may
    link it to theirs (``customer_link``).  A reference by e-mail alone uses the
    address as the id, in this integration's namespace only.
    """
    email = (ref.email or "").strip().lower()
    external_id = (ref.external_id or "").strip() or (f"mailto:{email}" if email else "")
    name = (ref.name or "").strip()[:150]
    if not external_id:
        raise _invalid("customer", "Name the customer by e-mail or external_id.")
    link = (
        IntegrationCustomer.objects.select_related("customer")
        .filter(integration=integration, external_id=external_id)
        .first()
    )
    if link:
        return link.customer
    user = _create_customer(
        email=_synthetic_email(integration, external_id),
        name=name or (email.split("@")[0] if email else "Customer"),
        language=language,
    )
    try:
        with transaction.atomic():
            IntegrationCustomer.objects.create(
                integration=integration, external_id=external_id, customer=user, email=email
            )
    except IntegrityError:
        # Another request named this customer first.
        return IntegrationCustomer.objects.get(
            integration=integration, external_id=external_id
        ).customer
    return user


def customer_link(*, caller, link_id: int) -> IntegrationCustomer:
    """Link an integration's customer to the caller's own account, explicitly.

    Only a customer who verified their address, and only an identity the
    integration gave that same address.  Its tickets (and the customer's
    messages on them) move to the caller's account, so the help centre shows
    them; the integration's later tickets for it open there too.  Linking again
    is harmless.
    """
    if not (caller.is_authenticated and caller.is_customer):
        raise Forbidden(_("Only customers link their conversations."))
    if not caller.email_verified:
        raise Forbidden(
            _("Verify your e-mail address first: we sent you a link."), code="email_not_verified"
        )
    with transaction.atomic():
        link = (
            IntegrationCustomer.objects.select_for_update()
            .select_related("integration")
            .filter(pk=link_id, email=caller.email.lower())
            .first()
        )
        if link is None:
            raise NotFound(_("No conversation of yours has this id."))
        if link.customer_id == caller.pk:
            return link
        if link.is_linked:
            raise Conflict(_("These conversations are linked to another account."), code="linked")
        shadow = link.customer_id
        Ticket.objects.filter(customer_id=shadow).update(customer=caller)
        Message.objects.filter(ticket__customer=caller, author_id=shadow).update(author=caller)
        link.previous_customer_id = shadow
        link.customer = caller
        link.linked_at = timezone.now()
        link.save(update_fields=["previous_customer", "customer", "linked_at"])
        # The account stood for this identity alone; nobody signs in as it.
        User.objects.filter(pk=shadow).update(is_active=False)
    return link


def ticket_open(
    *,
    caller,
    new: NewTicket,
    customer: CustomerRef | None = None,
    idempotency_key: str | None = None,
) -> Opened:
    """Open a ticket for a customer (the caller) or for an integration's customer.

    The ticket starts ``queued``; after commit ``events.ticket_queued`` runs —
    the point where dispatch takes over.  On PostgreSQL, without an
    Idempotency-Key, the ticket and its audit row are one statement, in a
    transaction that holds the open-ticket cap's lock; otherwise one
    transaction through the ORM.
    """
    integration = caller.integration if is_integration(caller) else None
    if integration is None and not (caller.is_authenticated and caller.is_customer):
        raise Forbidden(_("Only customers and integrations open tickets."))
    checked = _check_new_ticket(new, integration=integration is not None)
    if integration is not None and customer is None:
        raise _invalid("customer", "Name the customer by e-mail or external_id.")
    if not idempotency_key and connection.vendor == "postgresql":
        # The common case: the ticket and its audit row in one statement, in a
        # transaction for the cap's lock: the caller's, or one begun here.
        with contextlib.nullcontext() if connection.in_atomic_block else transaction.atomic():
            owner = _owner(caller, integration, customer, checked)
            _refuse_over_open_cap(owner)
            ticket, event = _opened_rows(
                caller=caller, owner=owner, integration=integration, new=checked
            )
            _insert_opened(ticket, event)
            selectors.lane_entered(ticket)
            # The hooks run at the commit (of this transaction, or of a caller's).
            _on_commit_entered_queue(ticket, opened=True)
        return Opened(ticket=ticket, created=True)

    with transaction.atomic():
        claim = None
        if idempotency_key:
            request_hash = _request_hash(checked, customer if integration else None)
            claim, earlier = _claim_idempotency_key(
                scope=scope_of(caller), key=idempotency_key, request_hash=request_hash
            )
            if earlier is not None:
                if not hmac.compare_digest(earlier.request_hash, request_hash):
                    raise IdempotencyKeyReused(
                        _("This Idempotency-Key was used with a different request."),
                        fields={"Idempotency-Key": [_("Used before with a different body.")]},
                    )
                return Opened(
                    ticket=earlier.ticket, created=False, status_code=earlier.response_status
                )
        owner = _owner(caller, integration, customer, checked)
        _refuse_over_open_cap(owner)
        ticket, event = _opened_rows(
            caller=caller, owner=owner, integration=integration, new=checked
        )
        ticket.save(force_insert=True)
        event.ticket = ticket
        event.save(force_insert=True)
        selectors.lane_entered(ticket)
        if claim is not None:
            claim.ticket = ticket
            claim.save(update_fields=["ticket"])
        _on_commit_entered_queue(ticket, opened=True)
    return Opened(ticket=ticket, created=True)


# The tickets a customer holds open: waiting or with an agent.
OPEN = (TicketStatus.QUEUED, TicketStatus.OFFERED, TicketStatus.ASSIGNED)
_OPEN_COUNT = prepared.Statement(
    "humanline_open_tickets",
    f"SELECT COUNT(*) FROM (SELECT 1 FROM {Ticket._meta.db_table}"  # noqa: S608 (names)
    f" WHERE customer_id = %(customer)s AND status IN ({', '.join(repr(str(s)) for s in OPEN)})"
    " LIMIT %(cap)s) held",
)


_CUSTOMER_LOCK = prepared.Statement(
    "humanline_open_tickets_lock",
    f"SELECT 1 FROM {User._meta.db_table} WHERE id = %s FOR NO KEY UPDATE",  # noqa: S608 (a name)
)


def _refuse_over_open_cap(owner) -> None:
    """One customer holds ``OPEN_TICKETS_PER_CUSTOMER`` open tickets at most (a 429).

    The caller holds the transaction that inserts the ticket.  Requests of one
    customer sent at the same instant take turns: on PostgreSQL the customer's
    row is locked first (until the commit), so each count, a statement of its
    own, sees the tickets the earlier ones opened; without it a burst all
    counted before any insert committed, and all passed.  SQLite's writers
    already take turns (``IMMEDIATE`` transactions).  ``NO KEY UPDATE``: other
    rows that name the customer (messages, events) are not held up.
    """
    cap = settings.HUMANLINE["OPEN_TICKETS_PER_CUSTOMER"]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _CUSTOMER_LOCK.execute(connection, cursor, [owner.pk])
        _OPEN_COUNT.execute(connection, cursor, {"customer": owner.pk, "cap": cap})
        (held,) = cursor.fetchone()
    if held >= cap:
        raise TooMany(
            _(
                "You already have %(held)d open tickets. Please wait for one of them to be"
                " answered, or add to it, before opening another."
            )
            % {"held": held},
            code="too_many_open_tickets",
            fields={"customer": [_("At most %(cap)d open tickets at once.") % {"cap": cap}]},
        )


def _owner(caller, integration: Integration | None, customer: CustomerRef | None, new: NewTicket):
    """The customer the ticket is for: the caller, or the integration's customer (made when new)."""
    if integration is None:
        return caller
    return _integration_customer(
        integration=integration, ref=customer, language=new.language or "en"
    )


def _opened_rows(*, caller, owner, integration, new: NewTicket) -> tuple[Ticket, TicketEvent]:
    """A new ticket and its first audit row, not yet written."""
    now = timezone.now()
    handoff = new.handoff or Handoff()
    ticket = Ticket(
        customer=owner,
        integration=integration,
        subject=new.subject,
        body=new.body,
        language=new.language or owner.language or "en",
        category=new.category,
        priority=new.priority,
        status=TicketStatus.QUEUED,
        handoff_transcript=handoff.transcript,
        handoff_summary=handoff.summary,
        handoff_intent=handoff.intent,
        queued_at=now,
        created_at=now,
        status_changed_at=now,
    )
    event = TicketEvent(
        **_actor_fields(caller),
        from_status="",
        to_status=TicketStatus.QUEUED,
        reason="Opened by the integration." if integration else "Opened.",
        created_at=now,
    )
    return ticket, event


class _OpenedStatement:
    """``INSERT`` the ticket and, from its new id, its audit row: one statement.

    Every column of both models is written, each value prepared as the ORM's
    own insert prepares it (``pre_save``, ``get_db_prep_save``); the event's
    ticket is the id the first insert returns.  Prepared once per connection.
    """

    def __init__(self):
        self.ticket_fields = [f for f in Ticket._meta.concrete_fields if not f.primary_key]
        ticket_link = TicketEvent._meta.get_field("ticket")
        self.event_fields = [
            f for f in TicketEvent._meta.concrete_fields if not f.primary_key and f != ticket_link
        ]

        def columns(fields):
            return ", ".join(connection.ops.quote_name(f.column) for f in fields)

        def values(fields):
            return ", ".join(["%s"] * len(fields))

        self.statement = prepared.Statement(
            "humanline_ticket_open",
            f"WITH t AS (INSERT INTO {Ticket._meta.db_table} ({columns(self.ticket_fields)})"  # noqa: S608
            f" VALUES ({values(self.ticket_fields)}) RETURNING id),"
            f" e AS (INSERT INTO {TicketEvent._meta.db_table}"
            f" ({ticket_link.column}, {columns(self.event_fields)})"
            f" SELECT t.id, {values(self.event_fields)} FROM t RETURNING id)"
            " SELECT t.id, e.id FROM t, e",
        )

    def values(self, ticket: Ticket, event: TicketEvent) -> list:
        return [
            field.get_db_prep_save(field.pre_save(row, add=True), connection)
            for row, fields in ((ticket, self.ticket_fields), (event, self.event_fields))
            for field in fields
        ]


_opened_statement: _OpenedStatement | None = None


def _insert_opened(ticket: Ticket, event: TicketEvent) -> None:
    """Write a new ticket and its audit row in one statement: atomic by itself (PostgreSQL)."""
    global _opened_statement
    if _opened_statement is None:
        _opened_statement = _OpenedStatement()
    values = _opened_statement.values(ticket, event)
    with connection.cursor() as cursor:
        _opened_statement.statement.execute(connection, cursor, values)
        ticket.pk, event.pk = cursor.fetchone()
    for row in (ticket, event):
        row._state.adding, row._state.db = False, connection.alias
    event.ticket = ticket


# --- transitions ------------------------------------------------------------

TRANSITIONS: dict[str, set[str]] = {
    TicketStatus.QUEUED: {TicketStatus.OFFERED, TicketStatus.ASSIGNED, TicketStatus.CANCELLED},
    TicketStatus.OFFERED: {TicketStatus.QUEUED, TicketStatus.ASSIGNED, TicketStatus.CANCELLED},
    TicketStatus.ASSIGNED: {TicketStatus.QUEUED, TicketStatus.RESOLVED},
    TicketStatus.RESOLVED: {TicketStatus.QUEUED, TicketStatus.CLOSED},
    TicketStatus.CLOSED: set(),
    TicketStatus.CANCELLED: set(),
}

# Called inside the transaction, with the ticket row locked, so that what they
# write commits (or not) together with the change: pay registers here to book
# the task on resolve and to reverse it on reopen (flow 5).
RESOLVE_HOOKS: list[Callable[..., None]] = []
REOPEN_HOOKS: list[Callable[..., None]] = []
# Called with ``rating=`` inside ``rating_submit``'s transaction: the quality bonus.
RATED_HOOKS: list[Callable[..., None]] = []


def _actor_fields(caller) -> dict:
    if caller is None:
        return {"actor": None, "integration": None}
    if is_integration(caller):
        return {"actor": None, "integration": caller.integration}
    return {"actor": caller, "integration": None}


def _lock(ticket_id: int, *, agent_user: bool = True) -> Ticket:
    """The ticket, row-locked, with what its checks and its answer read (one
    statement).  ``agent_user=False``: not the assigned agent's user, whom the
    caller has already (the caller is that user, or nothing is done)."""
    if rows.direct():
        return _lock_direct(ticket_id, agent_user=agent_user)
    agent = "assigned_agent__user" if agent_user else "assigned_agent"
    return (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("customer", agent, "rating")
        .get(pk=ticket_id)
    )


_locks: dict[bool, prepared.Statement] = {}


def _lock_direct(ticket_id: int, *, agent_user: bool) -> Ticket:
    """``_lock`` as one statement built once (``config.rows``): every resolve and
    message reads it, and the ORM's query cost more to compose than to run."""
    models = (Ticket, User, Agent, *((User,) if agent_user else ()), Rating)
    if agent_user not in _locks:
        ticket, agent = Ticket._meta, Agent._meta
        aliases = ("t", "c", "a", *(("u",) if agent_user else ()), "r")
        selected = ", ".join(rows.columns(m, a) for m, a in zip(models, aliases, strict=True))
        _locks[agent_user] = prepared.Statement(
            f"humanline_ticket_lock{'_with_agent_user' if agent_user else ''}",
            f"SELECT {selected} FROM {ticket.db_table} t"  # noqa: S608 (names only)
            f" JOIN {User._meta.db_table} c ON c.id = t.{ticket.get_field('customer').column}"
            f" LEFT JOIN {agent.db_table} a"
            f" ON a.id = t.{ticket.get_field('assigned_agent').column}"
            + (
                f" LEFT JOIN {User._meta.db_table} u ON u.id = a.{agent.get_field('user').column}"
                if agent_user
                else ""
            )
            + f" LEFT JOIN {Rating._meta.db_table} r"
            f" ON r.{Rating._meta.get_field('ticket').column} = t.id"
            " WHERE t.id = %s FOR UPDATE OF t",
        )
    with connection.cursor() as cursor:
        _locks[agent_user].execute(connection, cursor, [ticket_id])
        row = cursor.fetchone()
    if row is None:
        raise Ticket.DoesNotExist(ticket_id)
    ticket, customer, agent, *rest = rows.instances(row, models)
    ticket.customer, ticket.assigned_agent = customer, agent
    if agent_user and agent is not None:
        agent.user = rest[0]
    Ticket._meta.get_field("rating").set_cached_value(ticket, rest[-1])
    return ticket


def _transition(
    *,
    ticket: Ticket,
    to: str,
    caller,
    reason: str,
    agent: Agent | None = None,
    allowed_from: set[str] | None = None,
    **changes,
) -> None:
    """Change a locked ticket's status and write the event; the caller holds the transaction."""
    allowed = to in TRANSITIONS[ticket.status] and (
        allowed_from is None or ticket.status in allowed_from
    )
    if not allowed:
        raise InvalidTransition(
            _("A ticket that is %(status)s cannot become %(to)s.")
            % {
                "status": TicketStatus(ticket.status).label.lower(),
                "to": TicketStatus(to).label.lower(),
            },
            fields={"status": [ticket.status]},
        )
    _write_status(
        [ticket], to=to, caller=caller, agent=agent, reasons={ticket.pk: reason}, **changes
    )


def _status_sql(columns: tuple[str, ...], count: int) -> list[str]:
    """``_write_status``'s statements, for these columns and this many tickets: the
    event rows and the tickets' update.  PostgreSQL runs both as one statement
    (the insert as a data-modifying ``WITH``), a round trip fewer on every
    offer and accept; SQLite has no such ``WITH``, and runs the two."""
    marks = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * count)
    insert = (
        f"INSERT INTO {TicketEvent._meta.db_table} (ticket_id, actor_id,"  # noqa: S608
        " integration_id, agent_id, from_status, to_status, reason, created_at)"
        f" VALUES {marks}"
    )
    update = (
        f"UPDATE {Ticket._meta.db_table}"  # noqa: S608 (names)
        f" SET {', '.join(f'{column} = %s' for column in columns)}"
        f" WHERE id IN ({', '.join(['%s'] * count)})"
    )
    if connection.vendor == "postgresql":
        return [f"WITH event AS ({insert}) {update}"]
    return [insert, update]


# One ticket's change (every offer and accept) is prepared per set of columns:
# PostgreSQL planned it again on every call, at about the cost of running it.
# Several tickets' (a pass) run as plain statements, so that each number of
# tickets does not leave a prepared statement behind.
_one_ticket_status: dict[tuple[str, ...], list[prepared.Statement]] = {}


def _run_status(columns: tuple[str, ...], count: int, rows: list, values: list) -> None:
    with connection.cursor() as cursor:
        if count > 1:
            statements = _status_sql(columns, count)
        else:
            statements = _one_ticket_status.get(columns)
            if statements is None:
                statements = _one_ticket_status[columns] = [
                    prepared.Statement(
                        f"humanline_status_{hashlib.sha256(sql.encode()).hexdigest()[:16]}", sql
                    )
                    for sql in _status_sql(columns, 1)
                ]
        # One statement takes the event rows' values first, then the update's.
        params = [[*rows, *values]] if len(statements) == 1 else [rows, values]
        for statement, these in zip(statements, params, strict=True):
            if count > 1:
                cursor.execute(statement, these)
            else:
                statement.execute(connection, cursor, these)


def _write_status(
    tickets: list[Ticket], *, to: str, reasons: dict[int, str], caller=None, agent=None, **changes
) -> None:
    """Write allowed status changes of locked tickets: an event row each, one UPDATE.

    The one writer of a ticket's status.  Plain statements (``_status_sql``),
    each value prepared by its field as the ORM's save would
    (``get_db_prep_save``): every offer and accept runs them, and composing
    the ORM's insert and update cost more than the writes.  ``changes`` are
    the same other fields for every ticket (the assigned agent, the time it
    was assigned, ...).
    """
    now = timezone.now()
    actor = _actor_fields(caller)
    at = connection.ops.adapt_datetimefield_value(now)
    rows = [
        value
        for ticket in tickets
        for value in (
            ticket.pk,
            actor["actor"].pk if actor["actor"] else None,
            actor["integration"].pk if actor["integration"] else None,
            agent.pk if agent else None,
            ticket.status,
            to,
            (reasons.get(ticket.pk) or "").strip()[:2000],
            at,
        )
    ]
    was = {ticket.pk: ticket.status for ticket in tickets}
    waits = to in WAITING
    for ticket in tickets:
        if ticket.status in WAITING and not waits:
            selectors.lane_left(ticket)
        for name, value in {"status": to, "status_changed_at": now, **changes}.items():
            setattr(ticket, name, value)
        if waits and was[ticket.pk] not in WAITING:
            selectors.lane_entered(ticket)
    fields = [Ticket._meta.get_field(name) for name in ("status", "status_changed_at", *changes)]
    values = [
        field.get_db_prep_save(getattr(tickets[0], field.attname), connection) for field in fields
    ]
    ids = [ticket.pk for ticket in tickets]
    _run_status(tuple(field.column for field in fields), len(ids), rows, [*values, *ids])
    for hook in STATUS_HOOKS:
        for ticket in tickets:
            hook(ticket=ticket, from_status=was[ticket.pk], agent=agent)


def _on_commit_status(ticket: Ticket, *, reason: str = "") -> None:
    """Push the ticket's status after commit, from the row as written (no re-read, as
    the offer and accept paths do): a later change pushes its own."""
    effects.after_commit(
        lambda ticket=ticket, reason=reason: events.status_pushed(ticket, reason=reason)
    )


def _on_commit_lane(ticket: Ticket) -> None:
    effects.after_commit(
        lambda language=ticket.language, category=ticket.category: events.lane_changed(
            language=language, category=category
        )
    )


def _on_commit_entered_queue(ticket: Ticket, *, opened: bool = False) -> None:
    """``opened``: the ticket was just created and nothing changes it before the commit."""
    effects.after_commit(
        lambda ticket_id=ticket.pk, opened=ticket if opened else None: events.ticket_queued(
            ticket_id, opened=opened
        )
    )
    _on_commit_lane(ticket)


def _is_owner(caller, ticket: Ticket) -> bool:
    if is_integration(caller):
        return ticket.integration_id == caller.integration.pk
    return caller.is_authenticated and caller.is_customer and ticket.customer_id == caller.pk


def _is_assigned_agent(caller, ticket: Ticket) -> bool:
    return (
        not is_integration(caller)
        and caller.is_authenticated
        and ticket.assigned_agent_id is not None
        and ticket.assigned_agent.user_id == caller.pk
    )


# Every resolve and requeue runs it: a plain statement (prepared on PostgreSQL),
# as the ORM's update with its expressions cost more to compose than to run.
_SEAT_RELEASE = prepared.Statement(
    "humanline_seat_release",
    f"UPDATE {Agent._meta.db_table} SET"  # noqa: S608 (table and column names only)
    " active_tickets = CASE WHEN active_tickets > 0 THEN active_tickets - 1 ELSE 0 END,"
    " idle_since = CASE WHEN active_tickets <= 1 THEN %s ELSE idle_since END"
    " WHERE id = %s",
)


def _release_agent(agent_id: int) -> None:
    """A ticket left ``assigned``: one seat of the agent's capacity is free again.

    Releasing the last one starts the agent's idle time (dispatch rule R4).
    Capacity freed is a dispatch trigger, run after commit.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        _SEAT_RELEASE.execute(connection, cursor, [now, agent_id])
    for hook in CAPACITY_FREED_HOOKS:
        effects.after_commit(lambda hook=hook, agent_id=agent_id: hook(agent_id=agent_id))


# Called after commit with ``agent_id=`` when a ticket leaves an agent's hands
# (resolved or requeued): dispatch registers here to fill the free seat.
CAPACITY_FREED_HOOKS: list[Callable[..., None]] = []
# Called after commit with ``ticket_id=`` when a waiting ticket is cancelled:
# dispatch withdraws the offer that may be pending on it.
CANCELLED_HOOKS: list[Callable[..., None]] = []
# Called inside the transaction, for every ticket whose status is written, with
# ``ticket=`` (its new status set), ``from_status=`` and ``agent=`` (the agent
# the change concerns, or None): webhooks tell the integration.
STATUS_HOOKS: list[Callable[..., None]] = []
# Called inside the transaction with ``message=`` for every message posted.
MESSAGE_HOOKS: list[Callable[..., None]] = []
# Called inside the transaction with ``ticket=`` and ``notice=`` (what the
# customer is told) when a waiting ticket reaches the rung where they are told.
WAITING_HOOKS: list[Callable[..., None]] = []


def tickets_offer_many(*, tickets: list[Ticket], reasons: dict[int, str]) -> None:
    """``queued → offered`` for many tickets at once (dispatch's batch).

    The caller holds the transaction and has locked these tickets while they
    were ``queued``; this writes one event row each and one UPDATE
    (``_write_status``), and pushes each ticket's new status after commit.
    """
    if not tickets:
        return
    for ticket in tickets:
        if TicketStatus.OFFERED not in TRANSITIONS[ticket.status]:
            raise InvalidTransition(
                f"A {ticket.status} ticket cannot become offered.",
                fields={"status": [ticket.status]},
            )
    _write_status(tickets, to=TicketStatus.OFFERED, reasons=reasons)
    effects.after_commit(lambda tickets=list(tickets): events.statuses_pushed(tickets))


@transaction.atomic
def ticket_offer(*, ticket_id: int, caller=None, reason: str = "") -> Ticket:
    """``queued → offered``: dispatch has offered the ticket to an agent."""
    ticket = _lock(ticket_id)
    _transition(ticket=ticket, to=TicketStatus.OFFERED, caller=caller, reason=reason)
    _on_commit_status(ticket)
    return ticket


@transaction.atomic
def ticket_assign(
    *, ticket_id: int, agent_id: int, actor: User | None = None, reason: str = ""
) -> Ticket:
    """``queued | offered → assigned`` to an approved agent with room for one more.

    Locks the ticket, then the agent: dispatch must take locks in this order.
    The returned ticket has its customer and agent loaded (for the pushes).
    """
    return ticket_assign_within(ticket_id=ticket_id, agent_id=agent_id, actor=actor, reason=reason)


def refuse_unless_assignable(*, ticket_status: str, agent_status: str | None = None) -> None:
    """Why a ticket cannot go to an agent, read from their locked rows (none: it can)."""
    if ticket_status not in WAITING:
        raise InvalidTransition(
            _("A ticket that is %(status)s cannot be assigned.")
            % {"status": TicketStatus(ticket_status).label.lower()},
            fields={"status": [ticket_status]},
        )
    if agent_status is not None and agent_status != AgentStatus.APPROVED:
        raise InvalidTransition(
            _("An agent who is %(status)s cannot take tickets.")
            % {"status": AgentStatus(agent_status).label.lower()},
            code="agent_not_available",
        )


def at_capacity() -> Conflict:
    return Conflict("The agent is at capacity.", code="agent_at_capacity")


_SEAT_TAKE = prepared.Statement(
    "humanline_seat_take",
    f"UPDATE {Agent._meta.db_table} SET active_tickets = active_tickets + 1"  # noqa: S608
    " WHERE id = %s AND status = %s AND active_tickets < capacity",
)


def ticket_assign_within(
    *,
    ticket_id: int,
    agent_id: int,
    actor: User | None = None,
    reason: str = "",
    agent: Agent | None = None,
    locked: Ticket | None = None,
) -> Ticket:
    """``ticket_assign`` inside the caller's transaction, without a savepoint.

    For a caller whose own transaction must roll back whole when this fails
    (accepting an offer): a savepoint would cost two more round trips on
    every accept and buy nothing.  ``agent``, when the caller has read it
    (with its user), spares reading it again: whether it may take the ticket
    is checked on its locked row all the same.  ``locked`` is the ticket when
    the caller has locked its row in this transaction (with its customer),
    which spares locking it again.
    """
    if locked is not None and locked.pk == ticket_id:
        ticket = locked
    else:
        # of=("self",): the customer is read with the ticket, not locked.
        ticket = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("customer")
            .get(pk=ticket_id)
        )
    refuse_unless_assignable(ticket_status=ticket.status)
    # The conditional increment locks the agent's row (after the ticket's) and
    # takes the seat only from an approved agent with one free; the check
    # constraint agent_never_above_capacity backs it up in the database.
    with connection.cursor() as cursor:
        _SEAT_TAKE.execute(connection, cursor, [agent_id, AgentStatus.APPROVED])
        taken = cursor.rowcount == 1
    if not taken:
        status = Agent.objects.values_list("status", flat=True).get(pk=agent_id)
        refuse_unless_assignable(ticket_status=ticket.status, agent_status=status)
        raise at_capacity()
    if agent is None or agent.pk != agent_id:
        agent = Agent.objects.select_related("user").get(pk=agent_id)
    agent.status = AgentStatus.APPROVED
    _transition(
        ticket=ticket,
        to=TicketStatus.ASSIGNED,
        caller=actor,
        agent=agent,
        reason=reason or "Assigned.",
        assigned_agent=agent,
        assigned_at=timezone.now(),
    )
    # Pushed from the ticket as written here (agent and user loaded): no re-read.
    effects.after_commit(lambda ticket=ticket: events.assignment_pushed(ticket))
    _on_commit_lane(ticket)
    return ticket


@transaction.atomic
def ticket_requeue(*, ticket_id: int, actor: User | None = None, reason: str) -> Ticket:
    """``offered | assigned → queued``: the agent dropped out, the offer ran out.

    The ticket keeps its ``queued_at``, so it goes back to its old place in line.
    """
    ticket = _lock(ticket_id)
    previous = ticket.assigned_agent
    if ticket.status == TicketStatus.ASSIGNED:
        _release_agent(previous.pk)
    _transition(
        ticket=ticket,
        to=TicketStatus.QUEUED,
        caller=actor,
        agent=previous,
        reason=reason,
        allowed_from={TicketStatus.OFFERED, TicketStatus.ASSIGNED},
        assigned_agent=None,
        assigned_at=None,
    )
    _on_commit_status(ticket, reason=reason)
    _on_commit_entered_queue(ticket)
    return ticket


@transaction.atomic
def ticket_escalate(
    *, ticket_id: int, to: int, reasons: dict[int, str], notice: dict | None = None
) -> Ticket | None:
    """A waiting ticket climbs the escalation ladder to rung ``to`` (``Rung``).

    One ``TicketEvent`` of kind ``escalation`` per rung climbed, with its
    reason.  Reaching the rung where the customer is told pushes
    ``ticket.waiting`` with ``notice`` after commit.  None when there is
    nothing to climb: the ticket no longer waits, or is there already.
    """
    ticket = _lock(ticket_id)
    if ticket.status not in WAITING or to <= ticket.escalation:
        return None
    now = timezone.now()
    TicketEvent.objects.bulk_create(
        [
            TicketEvent(
                ticket=ticket,
                kind=EventKind.ESCALATION,
                from_status=ticket.status,
                to_status=ticket.status,
                reason=reasons.get(rung, Rung(rung).label)[:2000],
                created_at=now,
            )
            for rung in range(ticket.escalation + 1, to + 1)
        ]
    )
    told = ticket.escalation < Rung.CUSTOMER_NOTICE <= to
    ticket.escalation = to
    ticket.save(update_fields=["escalation"])
    if told and notice is not None:
        for hook in WAITING_HOOKS:
            hook(ticket=ticket, notice=notice)
        effects.after_commit(
            lambda ticket_id=ticket.pk, notice=notice: events.waiting_pushed(ticket_id, notice)
        )
    return ticket


@transaction.atomic
def ticket_language_change(*, ticket_id: int, caller, language: str) -> Ticket:
    """The customer continues in another language; the ticket keeps its place in line.

    Only while it is ``queued`` (an offer in flight is in the old language's
    lane).  ``queued_at`` and the escalation reached stay: the customer's wait
    goes on counting from when they joined the line.
    """
    ticket = _lock(ticket_id)
    if not _is_owner(caller, ticket):
        raise Forbidden(_("Only the ticket's customer may change its language."))
    language = (language or "").strip().lower()
    if language not in validators.language_codes():
        raise _invalid(
            "language", _("'%(code)s' is not an ISO 639-1 language code.") % {"code": language}
        )
    if language == ticket.language:
        raise _invalid(
            "language",
            _("The ticket is in '%(code)s' already.") % {"code": language},
            code="same_language",
        )
    if ticket.status != TicketStatus.QUEUED:
        raise InvalidTransition(
            _(
                "The language can be changed while the ticket waits in line, not while it is"
                " %(status)s."
            )
            % {"status": ticket.get_status_display().lower()},
            code="not_queued",
            fields={"status": [ticket.status]},
        )
    before = ticket.language
    TicketEvent.objects.create(
        ticket=ticket,
        **_actor_fields(caller),
        kind=EventKind.LANGUAGE,
        from_status=ticket.status,
        to_status=ticket.status,
        reason=f"Language changed from {before} to {language}.",
    )
    ticket.language = language
    ticket.save(update_fields=["language"])
    selectors.lane_left(ticket, language=before)
    selectors.lane_entered(ticket)
    effects.after_commit(
        lambda language=before, category=ticket.category: events.lane_changed(
            language=language, category=category
        )
    )
    _on_commit_status(ticket, reason=f"Continuing in {language}.")
    _on_commit_entered_queue(ticket)
    return ticket


@transaction.atomic
def ticket_cancel(*, ticket_id: int, caller, reason: str = "") -> Ticket:
    """``queued | offered → cancelled``, by the customer (or staff) while it waits."""
    ticket = _lock(ticket_id)
    if not (_is_owner(caller, ticket) or getattr(caller, "is_operations", False)):
        raise Forbidden(_("Only the ticket's customer may cancel it."))
    _transition(
        ticket=ticket, to=TicketStatus.CANCELLED, caller=caller, reason=reason or "Cancelled."
    )
    _on_commit_status(ticket)
    _on_commit_lane(ticket)
    for hook in CANCELLED_HOOKS:
        effects.after_commit(lambda hook=hook, ticket_id=ticket.pk: hook(ticket_id=ticket_id))
    return ticket


@transaction.atomic
def ticket_resolve(*, ticket_id: int, caller, reason: str = "") -> Ticket:
    """``assigned → resolved``, by the assigned agent."""
    ticket = _lock(ticket_id, agent_user=False)
    if not _is_assigned_agent(caller, ticket):
        raise Forbidden(_("Only the assigned agent may resolve this ticket."))
    agent = ticket.assigned_agent
    agent.user = caller  # the agent's user is the caller: not read again
    _release_agent(agent.pk)
    _transition(
        ticket=ticket,
        to=TicketStatus.RESOLVED,
        caller=caller,
        agent=agent,
        reason=reason or "Resolved.",
        resolved_at=timezone.now(),
    )
    for hook in RESOLVE_HOOKS:
        hook(ticket=ticket, agent=agent)
    _on_commit_status(ticket)
    _on_commit_quality(agent.pk, coalesced=True)
    return ticket


def reopen_window() -> timedelta:
    return timedelta(hours=settings.HUMANLINE["TICKET_REOPEN_WINDOW_HOURS"])


@transaction.atomic
def ticket_reopen(*, ticket_id: int, caller, reason: str = "") -> Ticket:
    """``resolved → queued`` within the reopen window, by the customer; back in line."""
    ticket = _lock(ticket_id)
    if not _is_owner(caller, ticket):
        raise Forbidden(_("Only the ticket's customer may reopen it."))
    if (
        ticket.status == TicketStatus.RESOLVED
        and timezone.now() > ticket.resolved_at + reopen_window()
    ):
        raise InvalidTransition(
            _("The reopen window has passed; please open a new ticket."),
            code="reopen_window_passed",
        )
    previous = ticket.assigned_agent
    now = timezone.now()
    _transition(
        ticket=ticket,
        to=TicketStatus.QUEUED,
        caller=caller,
        agent=previous,
        reason=reason or "Reopened by the customer.",
        allowed_from={TicketStatus.RESOLVED},
        assigned_agent=None,
        assigned_at=None,
        resolved_at=None,
        queued_at=now,
        reopen_count=ticket.reopen_count + 1,
        escalation=Rung.NONE,
    )
    for hook in REOPEN_HOOKS:
        hook(ticket=ticket, agent=previous)
    if previous is not None:
        _on_commit_quality(previous.pk)
    _on_commit_status(ticket, reason=reason)
    _on_commit_entered_queue(ticket)
    return ticket


def tickets_close_after_reopen_window(*, now: datetime | None = None) -> int:
    """Close resolved tickets whose reopen window has passed (periodic task)."""
    now = now or timezone.now()
    cutoff = now - reopen_window()
    ids = list(
        Ticket.objects.filter(status=TicketStatus.RESOLVED, resolved_at__lte=cutoff)
        .order_by("resolved_at")
        .values_list("id", flat=True)[:1000]
    )
    closed = 0
    for ticket_id in ids:
        with transaction.atomic():
            ticket = _lock(ticket_id)
            # Re-read under the lock: the customer may have reopened meanwhile.
            if ticket.status != TicketStatus.RESOLVED or ticket.resolved_at > cutoff:
                continue
            _transition(
                ticket=ticket,
                to=TicketStatus.CLOSED,
                caller=None,
                reason="Reopen window passed.",
                closed_at=now,
            )
            _on_commit_status(ticket)
            closed += 1
    return closed


# --- conversation -----------------------------------------------------------


@transaction.atomic
def message_post(*, ticket_id: int, caller, body: str) -> Message:
    """A message from the ticket's customer (or its integration) or its assigned agent."""
    body = (body or "").strip()
    if not body:
        raise _invalid("body", _("Write a message."))
    if len(body) > MESSAGE_MAX:
        raise _invalid("body", _("Keep a message under %(max)d characters.") % {"max": MESSAGE_MAX})
    # The lock orders messages against status changes: none lands after a resolve.
    ticket = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("assigned_agent")
        .get(pk=ticket_id)
    )
    if _is_owner(caller, ticket):
        author, role = ticket.customer, AuthorRole.CUSTOMER
        open_statuses = {*WAITING, TicketStatus.ASSIGNED}
    elif _is_assigned_agent(caller, ticket):
        author, role = caller, AuthorRole.AGENT
        open_statuses = {TicketStatus.ASSIGNED}
    else:
        raise Forbidden(_("Only the ticket's customer and its assigned agent write here."))
    if ticket.status not in open_statuses:
        raise InvalidTransition(
            _("The conversation is not open while the ticket is %(status)s.")
            % {"status": ticket.get_status_display().lower()},
            code="conversation_closed",
            fields={"status": [ticket.status]},
        )
    message = Message.objects.create(ticket=ticket, author=author, author_role=role, body=body)
    for hook in MESSAGE_HOOKS:
        hook(message=message)
    effects.after_commit(lambda message_id=message.pk: events.message_posted(message_id))
    return message


# --- rating and feedback ----------------------------------------------------


@transaction.atomic
def rating_submit(*, ticket_id: int, caller, score: int, comment: str = "") -> Rating:
    """The customer rates a resolved ticket, once, 1-5."""
    ticket = _lock(ticket_id)
    if not _is_owner(caller, ticket):
        raise Forbidden(_("Only the ticket's customer may rate it."))
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise _invalid("score", _("Give a score from 1 to 5."))
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise _invalid(
            "comment", _("Keep the comment under %(max)d characters.") % {"max": COMMENT_MAX}
        )
    if (
        ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
        or ticket.assigned_agent_id is None
    ):
        raise InvalidTransition(
            _("A ticket can be rated once it is resolved."),
            code="not_resolved",
            fields={"status": [ticket.status]},
        )
    if Rating.objects.filter(ticket=ticket).exists():
        raise Conflict(_("This ticket has been rated already."), code="already_rated")
    rating = Rating.objects.create(
        ticket=ticket, agent_id=ticket.assigned_agent_id, score=score, comment=comment
    )
    for hook in RATED_HOOKS:
        hook(rating=rating)
    _on_commit_quality(rating.agent_id)
    return rating


@transaction.atomic
def feedback_tag(*, ticket_id: int, caller, area: str, kind: str, text: str) -> Feedback:
    """The agent who handles (or resolved) a ticket tags it with product feedback."""
    ticket = Ticket.objects.select_related("assigned_agent").get(pk=ticket_id)
    if not _is_assigned_agent(caller, ticket):
        raise Forbidden(_("Only the ticket's agent may tag it with feedback."))
    errors: dict[str, list[str]] = {}
    area_slug = slugify(area or "")[:60]
    if not area_slug:
        errors["area"] = [_("Name the product area, such as 'card-payments'.")]
    if kind not in FeedbackKind.values:
        errors["kind"] = [
            _("Choose one of: %(values)s.") % {"values": ", ".join(FeedbackKind.values)}
        ]
    text = (text or "").strip()
    if not text:
        errors["text"] = [_("Describe what you learned.")]
    elif len(text) > FEEDBACK_TEXT_MAX:
        errors["text"] = [_("Keep the text under %(max)d characters.") % {"max": FEEDBACK_TEXT_MAX}]
    if errors:
        raise InvalidInput(next(iter(errors.values()))[0], fields=errors)
    if ticket.status not in (TicketStatus.ASSIGNED, TicketStatus.RESOLVED, TicketStatus.CLOSED):
        raise InvalidTransition(f"A {ticket.status} ticket cannot take feedback.")
    return Feedback.objects.create(
        ticket=ticket, agent=ticket.assigned_agent, area=area_slug, kind=kind, text=text
    )


# --- quality ----------------------------------------------------------------


def agent_quality_store(*, agent_id: int, now: datetime | None = None) -> int:
    """Compute the agent's quality score again and keep it on their row (dispatch rule R5).

    The score is ``selectors.agent_quality``'s; dispatch ranks by the kept copy
    in the database, so it must follow the agent's ratings, resolves and
    reopens (after each, ``_on_commit_quality``) and the sliding window
    (``agents_quality_store``, hourly).
    """
    score = selectors.agent_quality(agent=agent_id, now=now).score
    Agent.objects.filter(pk=agent_id).exclude(quality_score=score).update(quality_score=score)
    return score


def agents_quality_store(*, now: datetime | None = None) -> int:
    """``agent_quality_store`` for every approved agent; how many scores changed."""
    changed = 0
    for agent_id, kept in Agent.objects.filter(status=AgentStatus.APPROVED).values_list(
        "pk", "quality_score"
    ):
        changed += agent_quality_store(agent_id=agent_id, now=now) != kept
    return changed


def _on_commit_quality(agent_id: int, *, coalesced: bool = False) -> None:
    """Store the agent's score again after commit, on a worker.

    ``coalesced`` (a resolve, which moves the score only through the reopen
    rate): one refresh per agent per ``QUALITY_REFRESH_SECONDS``, run at the
    end of that time, so it counts every resolve made meanwhile.  A busy
    agent resolves every few seconds, and handing a task to the broker cost
    a resolve more than anything else it writes.  Ratings and reopens, which
    move the score most, refresh it at once; inline (eager) work has no
    later to wait for, so it refreshes at once too.
    """
    effects.after_commit(
        lambda agent_id=agent_id, coalesced=coalesced: _quality_refresh(agent_id, coalesced)
    )


def _quality_refresh(agent_id: int, coalesced: bool) -> None:
    task = tasks.store_agent_quality
    if not coalesced or task.app.conf.task_always_eager:
        task.delay(agent_id)
        return
    seconds = settings.HUMANLINE["QUALITY_REFRESH_SECONDS"]
    if cache.add(f"quality-refresh:{agent_id}", 1, timeout=seconds):
        task.apply_async((agent_id,), countdown=seconds)
    # Else a refresh is due within ``seconds``: it will count this change.


# --- integrations and their keys --------------------------------------------

KEY_PREFIX = "hl"


def _key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def integration_key_create(
    *, actor: User, integration_name: str, name: str = ""
) -> tuple[str, IntegrationApiKey]:
    """A new API key for an integration (created when new).  The raw key is returned once."""
    integration_name = (integration_name or "").strip()
    if not integration_name or len(integration_name) > 100:
        raise _invalid("integration", "Name the integration (up to 100 characters).")
    integration, _ = Integration.objects.get_or_create(name=integration_name)
    prefix = secrets.token_hex(6)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = IntegrationApiKey.objects.create(
        integration=integration,
        name=(name or "").strip()[:100],
        prefix=prefix,
        digest=_key_digest(raw),
        created_by=actor,
    )
    return raw, key


@transaction.atomic
def integration_key_revoke(*, actor: User, key_id: int) -> IntegrationApiKey:
    revoked = IntegrationApiKey.objects.filter(pk=key_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=actor
    )
    key = IntegrationApiKey.objects.select_related("integration").get(pk=key_id)
    if not revoked:
        raise InvalidTransition("This key is revoked already.", code="already_revoked")
    return key


def integration_key_authenticate(raw: str) -> IntegrationApiKey | None:
    """The active key a raw value stands for, or None."""
    parts = (raw or "").split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(raw) > 200:
        return None
    key = (
        IntegrationApiKey.objects.select_related("integration")
        .filter(prefix=parts[1], revoked_at__isnull=True)
        .first()
    )
    if key is None or not hmac.compare_digest(key.digest, _key_digest(raw)):
        return None
    now = timezone.now()
    # At most one write a minute per key, whatever the request rate.
    if key.last_used_at is None or key.last_used_at < now - timedelta(minutes=1):
        IntegrationApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def idempotency_keys_purge() -> int:
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
