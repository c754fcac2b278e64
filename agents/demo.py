"""The demo people of the brief: staff, an approved agent, a customer."""

from django.utils import timezone

from agents.models import Agent, AgentLanguage, AgentReviewEvent, AgentStatus, Role, Skill, User

DEMO_PASSWORD = "humanline-demo"


def _user(email: str, name: str, role: str, **extra) -> tuple[User, bool]:
    user = User.objects.filter(email=email).first()
    if user:
        return user, False
    user = User.objects.create_user(
        email=email, password=DEMO_PASSWORD, name=name, role=role, **extra
    )
    return user, True


def load_demo() -> int:
    created = 0
    _, new = _user("ops@example.com", "Olivia Ops", Role.STAFF, is_staff=True, is_superuser=True)
    created += new
    _, new = _user(
        "customer@example.com",
        "Carla Customer",
        Role.CUSTOMER,
        # Never chose: the demo's help centre follows the browser's language.
        language="",
        email_verified_at=timezone.now(),
    )
    created += new
    agent_user, new = _user("agent@example.com", "Aisha Agent", Role.AGENT, language="en")
    created += new
    if not hasattr(agent_user, "agent"):
        agent = Agent.objects.create(
            user=agent_user,
            cohort="student",
            country="PT",
            time_zone="Europe/Lisbon",
            capacity=2,
            motivation="Demo agent.",
            status=AgentStatus.APPROVED,
            status_changed_at=timezone.now(),
        )
        AgentLanguage.objects.bulk_create(
            [AgentLanguage(agent=agent, code="en"), AgentLanguage(agent=agent, code="pt")]
        )
        agent.skills.set(Skill.objects.filter(slug__in=["general", "payments", "refunds"]))
        AgentReviewEvent.objects.create(
            agent=agent,
            actor=None,
            from_status="",
            to_status=AgentStatus.APPROVED,
            reason="Demo agent, approved on creation.",
        )
    return created
