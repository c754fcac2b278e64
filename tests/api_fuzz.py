"""The API fuzz run's ground: a small market to act on, and the run's summary.

``tests/test_api_fuzz.py`` runs Schemathesis against the OpenAPI schema once
for each persona; ``seed_market`` gives every persona something of its own to
act on, and ``write_summary`` (called from ``tests/conftest.py``) prints the
cases run and the failures found at the end of the pytest run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.authtoken.models import Token

from agents import presence
from agents import services as agent_services
from agents.models import AgentStatus, Presence, Role
from marketplace.models import PayrollJobKind
from marketplace.services import dispatch, ledger, payroll, payroll_jobs
from tests.factories import AgentFactory, StaffFactory, UserFactory
from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory, next_grid_time
from tests.tickets.factories import TicketFactory
from tickets import services as ticket_services
from tickets.principals import IntegrationPrincipal

# The smallest PNG: one pixel, enough for an identity document in review.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@dataclass
class Market:
    """What the fuzz run may name: ids by path parameter, and each persona's credentials."""

    ids: dict[str, list] = field(default_factory=dict)
    credentials: dict[str, str | None] = field(default_factory=dict)


def _token(user) -> str:
    return f"Token {Token.objects.get_or_create(user=user)[0].key}"


def seed_market() -> Market:
    """Staff; an approved agent online with a pending offer, a ticket assigned and one
    resolved; an applicant in review with a document; a suspended agent; a customer
    holding those tickets; an integration with a key and a ticket of its own; shift
    slots, one booked; a closed past week with its CSV prepared; feedback."""
    now = timezone.now()
    staff = StaffFactory(email="fuzz-ops@example.org")
    customer = UserFactory(email="fuzz-customer@example.org", role=Role.CUSTOMER)
    agent = AgentFactory(
        user__email="fuzz-agent@example.org", languages=["en", "pt"], skills=["general", "payments"]
    )
    colleague = AgentFactory(user__email="fuzz-colleague@example.org")
    applicant = AgentFactory(user__email="fuzz-applicant@example.org", status=AgentStatus.APPLIED)
    document = agent_services.agent_document_upload(
        agent=applicant, upload=SimpleUploadedFile("id.png", PNG, content_type="image/png")
    )
    suspended = AgentFactory(user__email="fuzz-suspended@example.org", status=AgentStatus.SUSPENDED)
    presence.agent_presence_set(agent_id=agent.pk, status=Presence.ONLINE)

    # A past week, closed, its payroll CSV prepared by a finished job.
    past = ledger.period_get_or_create(now - timedelta(days=14))
    payroll.pay_period_close(period_id=past.pk, actor=staff, now=now)
    job = payroll_jobs.payroll_job_start(
        period_id=past.pk, kind=PayrollJobKind.EXPORT, actor=staff, now=now
    )
    payroll_jobs.payroll_job_run(job_id=job.pk)

    # The customer's tickets: one resolved (rateable, with feedback), one with the
    # agent, one waiting with an offer open to the agent.
    resolved = TicketFactory(customer=customer, category="payments")
    offer = dispatch.offer_make(ticket_id=resolved.pk, agent_id=agent.pk)
    dispatch.offer_accept(offer_id=offer.pk, user=agent.user)
    ticket_services.message_post(ticket_id=resolved.pk, caller=customer, body="Charged twice.")
    ticket_services.message_post(ticket_id=resolved.pk, caller=agent.user, body="Refunded one.")
    ticket_services.ticket_resolve(ticket_id=resolved.pk, caller=agent.user)
    ticket_services.feedback_tag(
        ticket_id=resolved.pk, caller=agent.user, area="billing", kind="bug", text="Double charge."
    )
    assigned = TicketFactory(customer=customer, category="general")
    offer = dispatch.offer_make(ticket_id=assigned.pk, agent_id=agent.pk)
    dispatch.offer_accept(offer_id=offer.pk, user=agent.user)
    queued = TicketFactory(customer=customer, category="payments")
    pending = dispatch.offer_make(ticket_id=queued.pk, agent_id=agent.pk)
    ledger.adjustment_create(actor=staff, agent_id=agent.pk, amount="1.00", reason="A bonus.")

    # Shifts: a slot tomorrow the agent booked, and an open one the day after.
    booked_slot = ShiftSlotFactory(created_by=staff)
    ShiftBookingFactory(slot=booked_slot, agent=agent)
    later = next_grid_time(days=2)
    open_slot = ShiftSlotFactory(
        created_by=staff, starts_at=later, ends_at=later + timedelta(minutes=30)
    )

    raw_key, key = ticket_services.integration_key_create(
        actor=staff, integration_name="Fuzz bot", name="fuzz"
    )
    bot = IntegrationPrincipal(integration=key.integration, key=key)
    handed_off = ticket_services.ticket_open(
        caller=bot,
        new=ticket_services.NewTicket(subject="Hand-off", body="Wants a person.", language="en"),
        customer=ticket_services.CustomerRef(external_id="crm-1", name="Ivo Integration"),
    ).ticket

    return Market(
        ids={
            "agent_id": [agent.pk, applicant.pk, suspended.pk, colleague.pk],
            "ticket_id": [resolved.pk, assigned.pk, queued.pk, handed_off.pk],
            "offer_id": [pending.pk],
            "slot_id": [booked_slot.pk, open_slot.pk],
            "period_id": [past.pk],
            "job_id": [job.pk],
            "key_id": [key.pk],
            "document_id": [str(document.pk)],
        },
        credentials={
            "staff": _token(staff),
            "agent": _token(agent.user),
            "applicant": _token(applicant.user),
            "customer": _token(customer),
            "integration": f"Api-Key {raw_key}",
            "anonymous": None,
        },
    )


# --- the summary at the end of the run ------------------------------------------------


@dataclass
class PersonaRun:
    operations: int = 0
    cases: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


RUNS = pytest.StashKey[dict[str, PersonaRun]]()


def write_summary(terminalreporter, config) -> None:
    runs = config.stash.get(RUNS, {})
    if not runs:
        return
    import schemathesis

    cases = sum(run.cases for run in runs.values())
    failures = sum(len(run.failures) for run in runs.values())
    terminalreporter.write_sep(
        "=",
        f"API fuzz (Schemathesis {schemathesis.__version__}): {cases} cases, {failures} failures",
    )
    for persona, run in runs.items():
        terminalreporter.write_line(
            f"  {persona:<12} {run.operations:3d} operations {run.cases:6d} cases"
            f" {len(run.failures):3d} failures"
        )
        for label, _ in run.failures:
            terminalreporter.write_line(f"      failed: {label}")
