"""System checks: policies in the settings that must hold before anything runs."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register()
def escalation_policy(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """WAIT_TARGET_SECONDS and ESCALATION_LADDER parse, and the ladder climbs."""
    from marketplace.services import escalation

    try:
        escalation.wait_targets()
        escalation.ladder()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="humanline.E001")]
    return []
