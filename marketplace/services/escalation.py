"""The escalation ladder: what happens to a ticket that waits past its target.

Each priority has a wait target (``WAIT_TARGET_SECONDS``: urgent 30 s, high 60 s,
normal 120 s by default).  A waiting ticket past it climbs the rungs of
``tickets.models.Rung`` in order, each at a multiple of its target
(``ESCALATION_LADDER``: 1, 1, 1 and 2 by default), each reached once and
audited as a ``TicketEvent`` of kind ``escalation`` saying why:

1. **Waiting bonus**: each new offer of the ticket pays ``WAITING_BONUS_STEP``
   more than the one before, up to ``WAITING_BONUS_CAP``; fixed into the
   offer like the surge and paid with the task.
2. **Staff alerted**: the floor lists the ticket with the reason nobody takes
   it (``waiting_reason``), and counts it in the page title.
3. **Customer told**: the API's ``waiting_reason`` and the help centre say why,
   honestly, and offer the languages the pool serves now; switching keeps the
   ticket's place in line (``tickets.services.ticket_language_change``).
4. **Wider pool**: the ``general`` fallback (rule E4) opens even while a
   specialist is online but busy.

The sweep climbs the ladder (``escalate_overdue``) every
``DISPATCH_SWEEP_SECONDS``, before its pass, so a rung reached is acted on in
the same sweep.  The reasons come from the rules themselves
(``rules.explain``): the first rule that leaves the ticket with nobody.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from itertools import pairwise

import pycountry
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import BooleanField, Count, F, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone, translation
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from marketplace import pricing
from marketplace.dispatch import rules
from marketplace.models import DeclineReason, Offer
from tickets import services as ticket_services
from tickets.models import WAITING, Priority, Rung, Ticket, TicketStatus

# --- the policy -----------------------------------------------------------------------


def _named_numbers(setting: str, names: list[str]) -> dict[str, float]:
    raw = settings.HUMANLINE[setting]
    try:
        pairs = dict(
            (name.strip(), float(value))
            for name, value in (part.split(":") for part in raw.split(",") if part.strip())
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"{setting}: write name:number pairs, not {raw!r}.") from exc
    if sorted(pairs) != sorted(names) or any(value < 0 for value in pairs.values()):
        raise ImproperlyConfigured(
            f"{setting}: give each of {', '.join(names)} once, with a number of at least 0;"
            f" not {raw!r}."
        )
    return pairs


@cache
def _targets(raw: str) -> dict[str, timedelta]:
    seconds = _named_numbers("WAIT_TARGET_SECONDS", list(Priority.values))
    return {priority: timedelta(seconds=value) for priority, value in seconds.items()}


@cache
def _ladder(raw: str) -> tuple[tuple[Rung, float], ...]:
    rungs = [rung for rung in Rung if rung != Rung.NONE]
    times = _named_numbers("ESCALATION_LADDER", [rung.name.lower() for rung in rungs])
    ladder = tuple((rung, times[rung.name.lower()]) for rung in rungs)
    if any(a[1] > b[1] for a, b in pairwise(ladder)):
        raise ImproperlyConfigured(
            "ESCALATION_LADDER: the rungs are climbed in the order"
            f" {', '.join(r.name.lower() for r in rungs)}; give each at least the multiple"
            " of the one before."
        )
    return ladder


def wait_targets() -> dict[str, timedelta]:
    """The wait target of each priority."""
    return _targets(settings.HUMANLINE["WAIT_TARGET_SECONDS"])


def ladder() -> tuple[tuple[Rung, float], ...]:
    """Each rung, in climbing order, with the multiple of the target it is reached at."""
    return _ladder(settings.HUMANLINE["ESCALATION_LADDER"])


def rung_due(*, priority: str, queued_at: datetime, now: datetime) -> Rung:
    """The highest rung a ticket of this priority waiting since then has reached."""
    waited, target = now - queued_at, wait_targets()[priority]
    reached = Rung.NONE
    for rung, times in ladder():
        if waited >= target * times:
            reached = rung
    return reached


def waiting_bonus(*, ticket: Ticket, offers_before: int) -> Decimal:
    """The waiting bonus of the ticket's next offer, none before its first rung."""
    if ticket.escalation < Rung.WAITING_BONUS:
        return Decimal("0.00")
    return pricing.waiting_bonus(
        offers_before=offers_before,
        step=Decimal(settings.HUMANLINE["WAITING_BONUS_STEP"]),
        cap=Decimal(settings.HUMANLINE["WAITING_BONUS_CAP"]),
    )


def bonus_offers_before(tickets: list[Ticket]) -> dict[int, int]:
    """How many offers with a waiting bonus each ticket had since it joined the line."""
    escalated = [t.pk for t in tickets if t.escalation >= Rung.WAITING_BONUS]
    if not escalated:
        return {}
    return dict(
        Offer.objects.filter(
            ticket_id__in=escalated, waiting_bonus__gt=0, created_at__gte=F("ticket__queued_at")
        )
        .values("ticket_id")
        .annotate(n=Count("id"))
        .values_list("ticket_id", "n")
    )


# --- why nobody takes it --------------------------------------------------------------


def language_name(code: str) -> str:
    """The language's name for people: "Greek", not ISO 639's "Modern Greek (1453-)"."""
    language = pycountry.languages.get(alpha_2=code)
    if language is None:
        return code
    name = getattr(language, "common_name", None) or language.name
    return re.sub(r" \(.*\)$", "", name).removeprefix("Modern ")


def _customer_language_name(code: str) -> str:
    """The name the customer reads: in their language, else dispatch's English one."""
    from config.locale import language_name as localised

    name = localised(code, capitalise=False)
    return language_name(code) if name == code else name


def _nobody_speaks(code: str, served: tuple[str, ...]) -> str:
    text = _("Nobody who speaks %(language)s is online right now.") % {
        "language": _customer_language_name(code)
    }
    if served:
        names = [_customer_language_name(c) for c in served]
        either = (
            names[0]
            if len(names) == 1
            else _("%(some)s or %(last)s")
            % {
                "some": ", ".join(names[:-1]),
                "last": names[-1],
            }
        )
        text += " " + _("You can continue in %(languages)s and keep your place in line.") % {
            "languages": either
        }
    return text


def _no_specialist(category: str, code: str) -> str:
    return _("No %(category)s specialist who speaks %(language)s is online right now.") % {
        "category": category,
        "language": _customer_language_name(code),
    }


# What the customer is told, in the language of whoever reads it (the help centre,
# the API, or the push the sweep sends in the customer's own: tickets.events).
nobody_speaks = lazy(_nobody_speaks, str)
no_specialist = lazy(_no_specialist, str)


def languages_served(*, category: str, now: datetime) -> list[str]:
    """The languages in which someone online could take a ticket of this category now."""
    return rules.languages_served(category=category, now=now)


@dataclass(frozen=True)
class WaitingReason:
    """Why a waiting ticket has no agent yet: for staff, and for the customer."""

    code: str
    staff: str
    # Lazy: rendered in the language of whoever reads it (``str()`` it to send).
    customer: str
    # When nobody online speaks the ticket's language: those the pool serves now.
    languages: list[str] = field(default_factory=list)
    # When every eligible agent passed on it: when it goes round again (None: never).
    next_round_seconds: int | None = None

    def for_customer(self) -> dict:
        """What the customer is told, in the active language."""
        return {"code": self.code, "message": str(self.customer), "languages": self.languages}

    def as_dict(self) -> dict:
        return asdict(self)


def _passed(ticket: Ticket, now: datetime) -> WaitingReason:
    """Every agent who could take it passed on it: how many, why, and when it comes round."""
    # E7's condition as rules.py writes it; its one value is a parameter.
    passed = RawSQL(*rules.passed_condition(Offer._meta.db_table, now), BooleanField())  # noqa: S611
    passes = list(
        Offer.objects.filter(passed, ticket=ticket).values(
            "agent_id", "decline_reason", "answered_at"
        )
    )
    agents = {p["agent_id"] for p in passes}
    for_good = {p["agent_id"] for p in passes if p["decline_reason"] == DeclineReason.NOT_MY_AREA}
    cooldown = timedelta(seconds=settings.HUMANLINE["REOFFER_COOLDOWN_SECONDS"])
    rounds = [p["answered_at"] + cooldown for p in passes if p["agent_id"] not in for_good]
    next_round = max(0, int((min(rounds) - now).total_seconds()) + 1) if rounds else None
    said = f" ({len(for_good)} said it is not their area)" if for_good else ""
    when = f"next round in {next_round} s" if next_round is not None else "none will take it"
    return WaitingReason(
        code="all_passed",
        staff=f"{len(agents)} eligible agent{'s' if len(agents) != 1 else ''} passed on it"
        f"{said}; {when}.",
        customer=gettext_lazy(
            "The agents online could not take your request yet; it goes to them again shortly."
        ),
        next_round_seconds=next_round,
    )


def _lane_reason(ticket: Ticket, lane: rules.Target, now: datetime) -> WaitingReason | None:
    """Why nobody in the ticket's lane can take it (rules E1 to E6); None: someone can."""
    why = rules.explain(lane, now)
    language = language_name(ticket.language)
    if why.rule in ("E1", "E2"):
        return WaitingReason(
            code="no_agent_online",
            staff="No agent is online.",
            customer=gettext_lazy("No agent is online right now. You keep your place in line."),
        )
    if why.rule == "E3":
        served = languages_served(category=ticket.category, now=now)
        return WaitingReason(
            code="language_unserved",
            staff=f"No agent online speaks {language} ({ticket.language}).",
            customer=nobody_speaks(ticket.language, tuple(served)),
            languages=served,
        )
    if why.rule == "E4":
        return WaitingReason(
            code="skill_unserved",
            staff=f"No agent online who speaks {language} handles {ticket.category}.",
            customer=no_specialist(ticket.category, ticket.language),
        )
    if why.rule in ("E5", "E6"):
        able = why.counts["E4"]
        return WaitingReason(
            code="all_busy",
            staff=f"All {able} agent{'s' if able != 1 else ''} who could take it are busy.",
            customer=gettext_lazy(
                "Every agent who can help is busy with another customer right now."
            ),
        )
    return None


OFFERED = WaitingReason(
    code="offered",
    staff="Offered to an agent; waiting for their answer.",
    customer=gettext_lazy("An agent is looking at your request now."),
)
NEXT_PASS = WaitingReason(
    code="next_pass",
    staff="An agent is free to take it: it is offered in the next pass.",
    customer=gettext_lazy("An agent is about to be offered your request."),
)


def waiting_reasons(tickets: list[Ticket], *, now: datetime | None = None) -> dict:
    """Why each of these waiting tickets has no agent yet: {ticket id: WaitingReason}.

    From the first rule that leaves a ticket with nobody.  Rules E1 to E6
    depend on a ticket only through its lane, so they are read once per lane;
    in a lane where someone is free, E7 is read for all its tickets at once,
    and only a ticket every free agent has passed on is looked at alone.  The
    floor and the sweep's ladder explain many tickets together.
    """
    now = now or timezone.now()
    reasons: dict[int, WaitingReason] = {}
    lanes: dict[tuple, list[Ticket]] = {}
    for ticket in tickets:
        if ticket.status == TicketStatus.OFFERED:
            reasons[ticket.pk] = OFFERED
            continue
        target = rules.Target.of(ticket)
        lanes.setdefault((target.language, target.category, target.wide), []).append(ticket)
    for (language, category, wide), waiting in lanes.items():
        lane = rules.Target(language=language, category=category, wide=wide)
        reason = _lane_reason(waiting[0], lane, now)
        if reason is not None:
            reasons.update((ticket.pk, reason) for ticket in waiting)
            continue
        able = rules.agents_for(lane, now)
        passed = rules.passed_pairs([t.pk for t in waiting], able, now)
        for ticket in waiting:
            everyone_passed = all((ticket.pk, agent) in passed for agent in able)
            reasons[ticket.pk] = _passed(ticket, now) if everyone_passed else NEXT_PASS
    return reasons


def waiting_reason(ticket: Ticket, *, now: datetime | None = None) -> WaitingReason:
    """Why the ticket has no agent yet (``waiting_reasons`` for one)."""
    return waiting_reasons([ticket], now=now)[ticket.pk]


def customer_waiting_reason(ticket: Ticket) -> dict | None:
    """What the customer is told once their ticket reached that rung; None before."""
    return customer_waiting_reasons([ticket]).get(ticket.pk)


def customer_waiting_reasons(tickets: list[Ticket]) -> dict[int, dict]:
    """``customer_waiting_reason`` for many tickets (a page of a list), each lane's
    rules read once: {ticket id: what its customer is told}, for those told."""
    told = [t for t in tickets if t.status in WAITING and t.escalation >= Rung.CUSTOMER_NOTICE]
    if not told:
        return {}
    return {pk: why.for_customer() for pk, why in waiting_reasons(told).items()}


# --- climbing ---------------------------------------------------------------------------


def _rung_reason(rung: Rung, ticket: Ticket, why: WaitingReason, target: timedelta) -> str:
    currency = settings.HUMANLINE["CURRENCY"]
    if rung == Rung.WAITING_BONUS:
        return (
            f"Waited past its target of {int(target.total_seconds())} s: each new offer pays"
            f" {settings.HUMANLINE['WAITING_BONUS_STEP']} {currency} more, up to"
            f" {settings.HUMANLINE['WAITING_BONUS_CAP']} {currency}."
        )
    if rung == Rung.STAFF_ALERT:
        return f"Staff alerted: {why.staff}"
    if rung == Rung.CUSTOMER_NOTICE:
        return f"Customer told: {why.customer}"
    return "Wider pool: agents with the general skill may take it, even with a specialist online."


def overdue(*, now: datetime):
    """Waiting tickets due to climb at least one rung."""
    due = Q()
    for priority, target in wait_targets().items():
        for rung, times in ladder():
            due |= Q(priority=priority, escalation__lt=rung, queued_at__lte=now - target * times)
    return Ticket.objects.filter(status__in=WAITING).filter(due)


def _told(ticket: Ticket, why: WaitingReason) -> dict:
    """The notice the customer is pushed, in their language (the sweep has none)."""
    from config.locale import recipient_language

    with translation.override(recipient_language(ticket.customer)):
        return why.for_customer()


def escalate_overdue(*, now: datetime | None = None, limit: int = 500) -> int:
    """Every waiting ticket past a rung's time climbs to it; how many tickets climbed."""
    now = now or timezone.now()
    climbing = [
        (ticket, rung)
        for ticket in overdue(now=now)
        .select_related("customer")
        .order_by("queued_at", "id")[:limit]
        if (rung := rung_due(priority=ticket.priority, queued_at=ticket.queued_at, now=now))
        > ticket.escalation
    ]
    reasons = waiting_reasons([ticket for ticket, _ in climbing], now=now)
    climbed = 0
    for ticket, rung in climbing:
        why = reasons[ticket.pk]
        target = wait_targets()[ticket.priority]
        climbed += bool(
            ticket_services.ticket_escalate(
                ticket_id=ticket.pk,
                to=rung,
                reasons={
                    r: _rung_reason(Rung(r), ticket, why, target)
                    for r in range(ticket.escalation + 1, rung + 1)
                },
                notice=_told(ticket, why),
            )
        )
    return climbed


# --- for the floor ----------------------------------------------------------------------


@dataclass(frozen=True)
class PastTarget:
    id: int
    subject: str
    language: str
    category: str
    priority: str
    status: str
    waiting_seconds: int
    target_seconds: int
    rung: str
    reason_code: str
    reason: str


def past_target(*, now: datetime) -> Q:
    """Waiting tickets past the wait target of their priority."""
    late = Q()
    for priority, target in wait_targets().items():
        late |= Q(priority=priority, queued_at__lt=now - target)
    return Q(status__in=WAITING) & late


def tickets_past_target(*, now: datetime, limit: int = 20) -> list[PastTarget]:
    """The longest-waiting tickets past their target, each with why nobody takes it."""
    rows = list(Ticket.objects.filter(past_target(now=now)).order_by("queued_at", "id")[:limit])
    reasons = waiting_reasons(rows, now=now)
    listed = []
    for ticket in rows:
        why = reasons[ticket.pk]
        listed.append(
            PastTarget(
                id=ticket.pk,
                subject=ticket.subject,
                language=ticket.language,
                category=ticket.category,
                priority=ticket.priority,
                status=ticket.status,
                waiting_seconds=int((now - ticket.queued_at).total_seconds()),
                target_seconds=int(wait_targets()[ticket.priority].total_seconds()),
                rung=Rung(ticket.escalation).label,
                reason_code=why.code,
                reason=why.staff,
            )
        )
    return listed
