"""The simulated people: customers, agents (applied, then approved by staff), a staff member.

Each run's people are its own (their e-mail addresses carry the run's tag), so a
run never inherits another's quality scores, idle times or online hours.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from agents import services as agent_services
from agents.models import Agent, AgentLanguage, AgentStatus, Role, Skill, User

FIRST = [
    "Aisha",
    "Bruno",
    "Chloé",
    "Dario",
    "Elin",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kaja",
    "Luca",
    "Maja",
    "Nils",
    "Olga",
    "Pablo",
    "Rosa",
    "Sven",
    "Tove",
    "Umar",
    "Vera",
    "Wim",
    "Xenia",
    "Yusuf",
    "Zoé",
    "Amir",
    "Britt",
    "Caio",
    "Dana",
    "Emil",
    "Freja",
    "Goran",
]
LAST = [
    "Andersson",
    "Berg",
    "Costa",
    "Dubois",
    "Eriksson",
    "Fischer",
    "García",
    "Holm",
    "Ivanova",
    "Jensen",
    "Keller",
    "Larsen",
    "Moreau",
    "Nowak",
    "Olsen",
    "Petit",
    "Quinn",
    "Rossi",
    "Silva",
    "Tanaka",
    "Ulrich",
    "Varga",
    "Weber",
    "Young",
    "Zimmermann",
]
COHORTS = ("student", "rural", "power_user", "other")
COUNTRIES = ("PT", "SE", "FR", "DE", "ES", "IT", "PL", "NL")


def person_name(n: int) -> str:
    return f"{FIRST[n % len(FIRST)]} {LAST[(n * 7 + n // len(FIRST)) % len(LAST)]}"


def staff_member(*, tag: str) -> User:
    user, _ = User.objects.get_or_create(
        email=f"sim-ops-{tag}@example.net",
        defaults={"name": "Simulation Ops", "role": Role.STAFF, "is_staff": True},
    )
    return user


def customers(*, tag: str, count: int, start: int = 0) -> list[User]:
    made = User.objects.bulk_create(
        [
            User(
                email=f"sim-customer-{tag}-{n}@example.net",
                name=person_name(n + 11),
                role=Role.CUSTOMER,
                password="!",  # unusable: these people never sign in
            )
            for n in range(start, start + count)
        ]
    )
    # bulk_create hands back primary keys on PostgreSQL and SQLite alike.
    return made


@transaction.atomic
def agent(
    *,
    tag: str,
    number: int,
    staff: User,
    languages: tuple[str, ...],
    skills: tuple[str, ...],
    capacity: int,
) -> Agent:
    """A new agent who applied (in review) and whom staff approve through the review service."""
    user = User.objects.create(
        email=f"sim-agent-{tag}-{number}@example.net",
        name=person_name(number),
        role=Role.AGENT,
        password="!",
        language=languages[0],
    )
    created = Agent.objects.create(
        user=user,
        status=AgentStatus.IN_REVIEW,
        cohort=COHORTS[number % len(COHORTS)],
        country=COUNTRIES[number % len(COUNTRIES)],
        time_zone="UTC",
        capacity=capacity,
        motivation="A simulated agent.",
        applied_at=timezone.now(),
    )
    AgentLanguage.objects.bulk_create([AgentLanguage(agent=created, code=c) for c in languages])
    created.skills.set(Skill.objects.filter(slug__in=skills))
    agent_services.agent_approve(actor=staff, agent_id=created.pk, reason="Simulated agent.")
    created.refresh_from_db()
    return created
