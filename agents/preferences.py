"""A person's own choices for how Humanline speaks to them: language and time zone."""

from agents import validators
from agents.models import User


def user_preferences_set(*, user: User, language: str, time_zone: str | None = None) -> User:
    """Save the language a person chose (ISO 639-1), and the browser's time zone
    if they have none yet (an agent's declared ``Agent.time_zone`` counts)."""
    if language not in validators.language_codes():
        return user
    fields = {"language": language}
    has_zone = bool(user.time_zone) or bool(
        user.is_agent and getattr(user, "agent", None) and user.agent.time_zone
    )
    if time_zone and not has_zone and time_zone in validators.time_zones():
        fields["time_zone"] = time_zone
    User.objects.filter(pk=user.pk).update(**fields)
    for name, value in fields.items():
        setattr(user, name, value)
    return user
