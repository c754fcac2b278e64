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


_IS_ACTIVE = None


def is_active_skill(slug: str) -> bool:
    """Whether ``slug`` names an active skill of the catalog (a ticket's category).

    Every new ticket asks; one prepared statement (``config.prepared``) rather
    than the ORM's ``exists()``, whose query building cost more than the query.
    """
    global _IS_ACTIVE
    from django.db import connection

    from agents.models import Skill
    from config import prepared

    if _IS_ACTIVE is None:
        _IS_ACTIVE = prepared.Statement(
            "humanline_skill_active",
            f"SELECT 1 FROM {Skill._meta.db_table} WHERE slug = %s AND is_active LIMIT 1",  # noqa: S608
        )
    with connection.cursor() as cursor:
        _IS_ACTIVE.execute(connection, cursor, [slug])
        return cursor.fetchone() is not None
