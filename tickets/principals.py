"""Who is calling: a signed-in user or an integration holding an API key.

Integrations are not users; DRF still needs a ``request.user`` that answers
``is_authenticated``, so an API key authenticates as an ``IntegrationPrincipal``
that has no role of a person (not staff, not an agent, not a customer).
"""

from dataclasses import dataclass

from tickets.models import Integration, IntegrationApiKey


@dataclass(frozen=True)
class IntegrationPrincipal:
    integration: Integration
    key: IntegrationApiKey

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_operations = False
    is_agent = False
    is_customer = False
    is_staff = False
    is_superuser = False

    @property
    def pk(self):
        return None

    @property
    def scope(self) -> str:
        return f"integration:{self.integration.pk}"

    def __str__(self):
        return f"integration {self.integration.name}"


def is_integration(caller) -> bool:
    return isinstance(caller, IntegrationPrincipal)


def scope_of(caller) -> str:
    """The namespace of a caller's idempotency keys."""
    if is_integration(caller):
        return caller.scope
    return f"user:{caller.pk}"
