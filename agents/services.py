"""Writes about people: sign-up, agent applications, documents, review decisions.

Each function is one transaction; status changes lock the agent row, refuse
transitions the current status does not allow, write an ``AgentReviewEvent``
and schedule e-mails and pushes after commit.
"""

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from agents import notifications, validators
from agents.models import (
    Agent,
    AgentDocument,
    AgentLanguage,
    AgentReviewEvent,
    AgentStatus,
    Cohort,
    RealtimeTicket,
    Role,
    Skill,
    User,
)
from config.errors import InvalidInput, InvalidTransition


def private_storage() -> FileSystemStorage:
    # No base_url: files here are never reachable by a public URL.
    return FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT / "documents", base_url=None)


# --- accounts ---------------------------------------------------------------


def _check_new_account(*, email: str, password: str, name: str) -> str:
    email = (email or "").strip().lower()
    errors: dict[str, list[str]] = {}
    if not email:
        errors["email"] = [_("This field is required.")]
    elif User.objects.filter(email__iexact=email).exists():
        errors["email"] = [_("An account with this e-mail address already exists.")]
    if not (name or "").strip():
        errors["name"] = [_("This field is required.")]
    try:
        validate_password(password or "", user=User(email=email, name=name or ""))
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise InvalidInput(next(iter(errors.values()))[0], fields=errors)
    return email


def _check_language(code: str, field: str = "language") -> str:
    code = (code or "").strip().lower()
    if code not in validators.language_codes():
        raise InvalidInput(
            _("'%(code)s' is not an ISO 639-1 language code.") % {"code": code},
            code="unknown_language",
            fields={field: [_("'%(code)s' is not an ISO 639-1 language code.") % {"code": code}]},
        )
    return code


def _create_user(**fields) -> User:
    try:
        with transaction.atomic():
            return User.objects.create_user(**fields)
    except IntegrityError as exc:
        # Two sign-ups with one address at once: the unique index decides.
        raise InvalidInput(
            _("An account with this e-mail address already exists."),
            fields={"email": [_("An account with this e-mail address already exists.")]},
        ) from exc


# --- e-mail verification ----------------------------------------------------

VERIFICATION_SALT = "humanline.email-verification"


def email_verification_token(user: User) -> str:
    """A signed, expiring proof of reading mail at ``user.email``: good for that
    account and that address only (a changed address voids it)."""
    return signing.dumps({"user": user.pk, "email": user.email.lower()}, salt=VERIFICATION_SALT)


def email_verification_send(*, user: User, link: Callable[[str], str]) -> None:
    """Mail the customer the link ``link(token)`` (through the outbox)."""
    if not user.is_customer:
        raise InvalidTransition(_("Only customers' addresses are verified."), code="not_a_customer")
    if user.email_verified:
        raise InvalidTransition(
            _("This e-mail address is already verified."), code="already_verified"
        )
    notifications.mail_verification(user=user, url=link(email_verification_token(user)))


def email_verify(*, token: str) -> User:
    """Mark the address verified; a second use of the same link changes nothing."""
    hours = settings.HUMANLINE["EMAIL_VERIFICATION_HOURS"]
    try:
        claim = signing.loads(token, salt=VERIFICATION_SALT, max_age=timedelta(hours=hours))
    except signing.SignatureExpired as exc:
        message = _("This link has expired: ask for a new one from the help centre.")
        raise InvalidInput(message, code="token_expired", fields={"token": [message]}) from exc
    except signing.BadSignature as exc:
        raise _bad_verification_token() from exc
    if not isinstance(claim, dict):
        raise _bad_verification_token()
    with transaction.atomic():
        user = (
            User.objects.select_for_update()
            .filter(pk=claim.get("user"), email__iexact=claim.get("email"), is_active=True)
            .first()
        )
        if user is None:
            raise _bad_verification_token()
        if not user.email_verified:
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at"])
    return user


def _bad_verification_token() -> InvalidInput:
    message = "This link is not valid: use the latest one we sent, or ask for a new one."
    return InvalidInput(message, code="invalid_token", fields={"token": [message]})


@transaction.atomic
def customer_sign_up(
    *, email: str, password: str, name: str, language: str = "", link: Callable[[str], str]
) -> User:
    """A customer account, unverified: ``link(token)`` is the verification link mailed.
    Without a language the pages follow the browser and tickets default to English."""
    email = _check_new_account(email=email, password=password, name=name)
    language = _check_language(language) if (language or "").strip() else ""
    user = _create_user(
        email=email, password=password, name=name.strip(), language=language, role=Role.CUSTOMER
    )
    email_verification_send(user=user, link=link)
    return user


# --- applications -----------------------------------------------------------


@dataclass(frozen=True)
class Application:
    email: str
    password: str
    name: str
    cohort: str
    languages: list[str]
    skills: list[str]
    country: str
    time_zone: str
    capacity: int | None = None
    motivation: str = ""


def _check_application(app: Application) -> tuple[list[str], list[Skill], int]:
    errors: dict[str, list[str]] = {}
    if app.cohort not in Cohort.values:
        errors["cohort"] = [_("Choose one of: %(values)s.") % {"values": ", ".join(Cohort.values)}]

    languages = sorted({(code or "").strip().lower() for code in app.languages or []})
    if not languages:
        errors["languages"] = [_("Declare at least one language.")]
    else:
        unknown = [code for code in languages if code not in validators.language_codes()]
        if unknown:
            errors["languages"] = [
                _("Not ISO 639-1 language codes: %(codes)s.")
                % {"codes": ", ".join(repr(c) for c in unknown)}
            ]

    slugs = sorted({(slug or "").strip().lower() for slug in app.skills or []})
    skills = list(Skill.objects.filter(slug__in=slugs, is_active=True))
    if not slugs:
        errors["skills"] = [_("Declare at least one skill.")]
    elif len(skills) != len(slugs):
        known = {skill.slug for skill in skills}
        unknown = [slug for slug in slugs if slug not in known]
        errors["skills"] = [_("Unknown skills: %(skills)s.") % {"skills": ", ".join(unknown)}]

    if (app.country or "").upper() not in validators.country_codes():
        errors["country"] = [_("Give an ISO 3166-1 alpha-2 country code, such as 'PT'.")]
    if app.time_zone not in validators.time_zones():
        errors["time_zone"] = [_("Give an IANA time zone, such as 'Europe/Lisbon'.")]

    policy = settings.HUMANLINE
    capacity = app.capacity if app.capacity is not None else policy["AGENT_CAPACITY_DEFAULT"]
    if not 1 <= capacity <= policy["AGENT_CAPACITY_MAX"]:
        errors["capacity"] = [
            _("Capacity must be between 1 and %(max)d tickets at once.")
            % {"max": policy["AGENT_CAPACITY_MAX"]}
        ]
    if len(app.motivation or "") > 1000:
        errors["motivation"] = [_("Keep the motivation under 1000 characters.")]
    if errors:
        raise InvalidInput(next(iter(errors.values()))[0], fields=errors)
    return languages, skills, capacity


@transaction.atomic
def agent_apply(*, application: Application) -> Agent:
    """Create an applicant: a user with the agent role and an ``applied`` agent."""
    errors: dict[str, list[str]] = {}
    email = ""
    try:
        email = _check_new_account(
            email=application.email, password=application.password, name=application.name
        )
    except InvalidInput as exc:
        errors.update(exc.fields)
    try:
        languages, skills, capacity = _check_application(application)
    except InvalidInput as exc:
        errors.update(exc.fields)
    if errors:
        raise InvalidInput(next(iter(errors.values()))[0], fields=errors)

    user = _create_user(
        email=email,
        password=application.password,
        name=application.name.strip(),
        language=languages[0],
        role=Role.AGENT,
    )
    agent = Agent.objects.create(
        user=user,
        cohort=application.cohort,
        country=application.country.upper(),
        time_zone=application.time_zone,
        capacity=capacity,
        motivation=(application.motivation or "").strip(),
    )
    AgentLanguage.objects.bulk_create([AgentLanguage(agent=agent, code=c) for c in languages])
    agent.skills.set(skills)
    AgentReviewEvent.objects.create(
        agent=agent, actor=user, from_status="", to_status=AgentStatus.APPLIED, reason="Applied."
    )
    return agent


# --- documents --------------------------------------------------------------


def _documents_closed(status: str) -> str:
    return _("Documents can be added while the application is open, not when it is %(status)s.") % {
        "status": AgentStatus(status).label.lower()
    }


def agent_document_upload(*, agent: Agent, upload) -> AgentDocument:
    """Store an identity document; the first accepted one puts the application in review.

    The type is judged from the content.  The file is written before the row
    and removed again if the row cannot be written, so a failure stores nothing.
    """
    max_bytes = settings.HUMANLINE["DOCUMENT_MAX_BYTES"]
    if upload is None:
        raise InvalidInput(_("Attach a file."), fields={"file": [_("Attach a file.")]})
    if upload.size > max_bytes:
        message = _("The file is larger than %(mb)d MB.") % {"mb": max_bytes // (1024 * 1024)}
        raise InvalidInput(message, code="file_too_large", fields={"file": [message]})
    if upload.size == 0:
        raise InvalidInput(_("The file is empty."), fields={"file": [_("The file is empty.")]})
    upload.seek(0)
    mime = validators.sniff_document_type(upload.read(8192))
    if mime is None:
        message = _("Upload a PDF, JPEG or PNG document (judged by its content, not its name).")
        raise InvalidInput(message, code="unsupported_file_type", fields={"file": [message]})
    if agent.status not in (AgentStatus.APPLIED, AgentStatus.IN_REVIEW):
        raise InvalidTransition(_documents_closed(agent.status), fields={"status": [agent.status]})

    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    storage = private_storage()
    storage_name = f"{uuid.uuid4().hex}.{validators.ALLOWED_DOCUMENT_TYPES[mime]}"
    storage.save(storage_name, upload)
    try:
        with transaction.atomic():
            locked = Agent.objects.select_for_update().get(pk=agent.pk)
            if locked.status not in (AgentStatus.APPLIED, AgentStatus.IN_REVIEW):
                raise InvalidTransition(_documents_closed(locked.status))
            # Counted under the agent's lock: concurrent uploads cannot pass it together.
            most = settings.HUMANLINE["DOCUMENT_MAX_COUNT"]
            if AgentDocument.objects.filter(agent=locked).count() >= most:
                message = _("An application holds %(most)d documents at most.") % {"most": most}
                raise InvalidInput(message, code="too_many_documents", fields={"file": [message]})
            document = AgentDocument.objects.create(
                agent=locked,
                storage_name=storage_name,
                content_type=mime,
                size=upload.size,
                sha256=digest.hexdigest(),
                original_name=(getattr(upload, "name", "") or "")[-200:],
            )
            if locked.status == AgentStatus.APPLIED:
                _transition(
                    agent=locked,
                    to=AgentStatus.IN_REVIEW,
                    actor=locked.user,
                    reason="Identity document uploaded.",
                )
    except Exception:
        storage.delete(storage_name)
        raise
    agent.refresh_from_db()
    return document


def agent_document_open(*, document: AgentDocument):
    return private_storage().open(document.storage_name, "rb")


# --- review -----------------------------------------------------------------

# Which decisions each status allows; anything else is a 409.
TRANSITIONS: dict[str, set[str]] = {
    AgentStatus.APPLIED: {AgentStatus.IN_REVIEW, AgentStatus.REJECTED},
    AgentStatus.IN_REVIEW: {AgentStatus.APPROVED, AgentStatus.REJECTED},
    AgentStatus.APPROVED: {AgentStatus.SUSPENDED},
    AgentStatus.SUSPENDED: {AgentStatus.APPROVED},
    AgentStatus.REJECTED: set(),
}


def _transition(*, agent: Agent, to: str, actor: User | None, reason: str) -> AgentReviewEvent:
    """Change a locked agent's status and write the event; caller holds the transaction."""
    if to not in TRANSITIONS[agent.status]:
        raise InvalidTransition(
            f"An agent who is {agent.status} cannot become {to}.",
            fields={"status": [agent.status]},
        )
    now = timezone.now()
    event = AgentReviewEvent.objects.create(
        agent=agent,
        actor=actor,
        from_status=agent.status,
        to_status=to,
        reason=reason,
        created_at=now,
    )
    agent.status = to
    agent.status_changed_at = now
    agent.save(update_fields=["status", "status_changed_at"])
    return event


def _decide(
    *,
    actor: User,
    agent_id: int,
    to: str,
    reason: str,
    allowed_from: set[str],
    reason_required: bool,
) -> Agent:
    reason = (reason or "").strip()
    if reason_required and not reason:
        raise InvalidInput(
            "A reason is required for this decision.",
            code="reason_required",
            fields={"reason": ["A reason is required for this decision."]},
        )
    if len(reason) > 2000:
        raise InvalidInput(
            "Keep the reason under 2000 characters.",
            fields={"reason": ["Keep the reason under 2000 characters."]},
        )
    with transaction.atomic():
        # The row lock makes two staff clicking at once take turns: the second
        # sees the first one's status and gets a 409.
        agent = Agent.objects.select_for_update().select_related("user").get(pk=agent_id)
        if agent.status not in allowed_from:
            raise InvalidTransition(
                f"This decision is not possible for an agent who is {agent.status}.",
                fields={"status": [agent.status]},
            )
        event = _transition(agent=agent, to=to, actor=actor, reason=reason)
        if to == AgentStatus.SUSPENDED:
            for hook in SUSPENSION_HOOKS:
                hook(agent=agent, actor=actor)
        notifications.mail_decision(event=event)
    return agent


# Called inside the suspension's transaction, with the agent row locked: the
# presence and dispatch layers register here (from their AppConfig.ready) to
# take the agent offline at once and return their open offers to dispatch.
SUSPENSION_HOOKS: list = []


def agent_approve(*, actor: User, agent_id: int, reason: str = "") -> Agent:
    return _decide(
        actor=actor,
        agent_id=agent_id,
        to=AgentStatus.APPROVED,
        reason=reason,
        allowed_from={AgentStatus.IN_REVIEW},
        reason_required=False,
    )


def agent_reject(*, actor: User, agent_id: int, reason: str) -> Agent:
    return _decide(
        actor=actor,
        agent_id=agent_id,
        to=AgentStatus.REJECTED,
        reason=reason,
        allowed_from={AgentStatus.APPLIED, AgentStatus.IN_REVIEW},
        reason_required=True,
    )


def agent_suspend(*, actor: User, agent_id: int, reason: str) -> Agent:
    return _decide(
        actor=actor,
        agent_id=agent_id,
        to=AgentStatus.SUSPENDED,
        reason=reason,
        allowed_from={AgentStatus.APPROVED},
        reason_required=True,
    )


def agent_reinstate(*, actor: User, agent_id: int, reason: str) -> Agent:
    return _decide(
        actor=actor,
        agent_id=agent_id,
        to=AgentStatus.APPROVED,
        reason=reason,
        allowed_from={AgentStatus.SUSPENDED},
        reason_required=True,
    )


# --- skills catalog ---------------------------------------------------------


@transaction.atomic
def skill_create(*, slug: str, name: str) -> Skill:
    slug = (slug or "").strip().lower()
    if Skill.objects.filter(slug=slug).exists():
        raise InvalidInput("This skill exists already.", fields={"slug": ["Already exists."]})
    return Skill.objects.create(slug=slug, name=(name or slug).strip())


# --- realtime tickets -------------------------------------------------------


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def realtime_ticket_issue(*, user: User) -> tuple[str, RealtimeTicket]:
    value = secrets.token_urlsafe(32)
    ttl = settings.HUMANLINE["REALTIME_TICKET_TTL_SECONDS"]
    ticket = RealtimeTicket.objects.create(
        digest=_digest(value), user=user, expires_at=timezone.now() + timedelta(seconds=ttl)
    )
    return value, ticket


def realtime_ticket_redeem(*, value: str) -> User | None:
    """The ticket's user, once: a conditional update marks it used."""
    if not value or len(value) > 200:
        return None
    now = timezone.now()
    digest = _digest(value)
    used = RealtimeTicket.objects.filter(
        digest=digest, used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if used != 1:
        return None
    ticket = RealtimeTicket.objects.select_related("user").get(digest=digest)
    return ticket.user if ticket.user.is_active else None


def realtime_tickets_purge() -> int:
    deleted, _ = RealtimeTicket.objects.filter(
        expires_at__lt=timezone.now() - timedelta(hours=1)
    ).delete()
    return deleted
