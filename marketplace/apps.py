from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"

    def ready(self):
        from agents import presence
        from agents import services as agent_services
        from marketplace import events
        from marketplace.services import dispatch
        from tickets import events as ticket_events
        from tickets import services as ticket_services

        # Every event that can create a match triggers dispatch after commit.
        _register(presence.AVAILABILITY_HOOKS, events.agent_available)
        _register(ticket_services.CAPACITY_FREED_HOOKS, events.seat_freed)
        _register(ticket_events.QUEUED_HOOKS, events.ticket_waiting)
        # ... and everything that ends availability returns the work.
        _register(presence.UNAVAILABILITY_HOOKS, events.agent_unavailable)
        _register(ticket_services.CANCELLED_HOOKS, events.ticket_cancelled)
        _register(agent_services.SUSPENSION_HOOKS, dispatch.on_suspension)
        # Pay: each entry is written inside the transaction of its cause.
        from marketplace.services import ledger, shifts

        _register(ticket_services.RESOLVE_HOOKS, ledger.on_ticket_resolved)
        _register(ticket_services.REOPEN_HOOKS, ledger.on_ticket_reopened)
        _register(ticket_services.RATED_HOOKS, ledger.on_ticket_rated)
        _register(shifts.SETTLED_HOOKS, ledger.on_booking_settled)


def _register(hooks: list, hook) -> None:
    if hook not in hooks:
        hooks.append(hook)
