"""The default skills catalog of the brief; staff extend it."""

DEFAULT_SKILLS = [
    ("general", "General questions"),
    ("payments", "Payments"),
    ("refunds", "Refunds"),
    ("account", "Account and access"),
    ("disputes", "Disputes"),
    ("technical", "Technical problems"),
]


def ensure_default_skills() -> None:
    from agents.models import Skill

    for slug, name in DEFAULT_SKILLS:
        Skill.objects.get_or_create(slug=slug, defaults={"name": name})
