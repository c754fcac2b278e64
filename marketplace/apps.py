from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"

    def ready(self):
        from agents import presence
        from marketplace import events

        # The explicit dispatch trigger: going online calls this after commit.
        if events.agent_available not in presence.AVAILABILITY_HOOKS:
            presence.AVAILABILITY_HOOKS.append(events.agent_available)
