from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"

    def ready(self):
        from config import effects
        from marketplace.services import dispatch
        from operations import counters

        # Each sweep's repairs, counted in the process that ran it.
        if counters.sweep_counted not in dispatch.SWEPT_HOOKS:
            dispatch.SWEPT_HOOKS.append(counters.sweep_counted)
        # Side effects of committed writes that failed, counted where they failed.
        if counters.side_effect_failed not in effects.FAILED_HOOKS:
            effects.FAILED_HOOKS.append(counters.side_effect_failed)
