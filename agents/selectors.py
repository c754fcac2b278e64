"""Reads about people, always scoped to the caller."""

from django.db.models import Prefetch, QuerySet

from agents.models import Agent, AgentDocument, AgentReviewEvent, AgentStatus, Skill, User


def _agents() -> QuerySet[Agent]:
    return Agent.objects.select_related("user").prefetch_related("languages", "skills")


def agent_review_queue(*, status: str | None = None) -> QuerySet[Agent]:
    """Applications for staff; by default the ones waiting for a decision first."""
    queryset = _agents().prefetch_related(
        "documents",
        Prefetch("review_events", AgentReviewEvent.objects.select_related("actor")),
    )
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("applied_at", "id")


def agent_for_user(*, user: User) -> Agent | None:
    if not user.is_authenticated:
        return None
    return _agents().filter(user=user).first()


def document_for_staff(*, document_id) -> AgentDocument:
    return AgentDocument.objects.select_related("agent__user").get(pk=document_id)


def skill_catalog() -> QuerySet[Skill]:
    return Skill.objects.filter(is_active=True).order_by("slug")


def review_counts() -> dict[str, int]:
    from django.db.models import Count

    rows = Agent.objects.values("status").annotate(n=Count("id"))
    counts = {status: 0 for status in AgentStatus.values}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts
