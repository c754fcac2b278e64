from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"

    def ready(self):
        from marketplace import (
            checks,  # noqa: F401 (registers them)
            events,
        )
        from tickets import services as ticket_services

        # What dispatch does on each event: one table (marketplace.events.routes).
        for _event, hooks, handler in events.routes():
            _register(hooks, handler)
        # Pay: each entry is written inside the transaction of its cause.
        from marketplace.services import ledger, shifts

        _register(ticket_services.RESOLVE_HOOKS, ledger.on_ticket_resolved)
        _register(ticket_services.REOPEN_HOOKS, ledger.on_ticket_reopened)
        _register(ticket_services.RATED_HOOKS, ledger.on_ticket_rated)
        _register(shifts.SETTLED_HOOKS, ledger.on_booking_settled)


def _register(hooks: list, hook) -> None:
    if hook not in hooks:
        hooks.append(hook)
