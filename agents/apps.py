from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "People and agents"

    def ready(self):
        from agents import presence, services

        # Suspension takes the agent offline inside its own transaction.
        if presence.presence_on_suspension not in services.SUSPENSION_HOOKS:
            services.SUSPENSION_HOOKS.append(presence.presence_on_suspension)
