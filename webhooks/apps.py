from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Webhooks"

    def ready(self):
        from tickets import services
        from webhooks import hooks

        for registry, hook in (
            (services.STATUS_HOOKS, hooks.on_status),
            (services.MESSAGE_HOOKS, hooks.on_message),
            (services.RATED_HOOKS, hooks.on_rated),
            (services.WAITING_HOOKS, hooks.on_waiting),
        ):
            if hook not in registry:
                registry.append(hook)
