from django.contrib import admin, messages

from webhooks import services
from webhooks.models import Attempt, Delivery, Endpoint


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "integration", "active", "failure_streak", "disabled_at", "created_at"]
    list_filter = ["active", "integration"]
    readonly_fields = ["failure_streak", "disabled_at", "disabled_reason", "created_by"]
    fields = ["integration", "url", "events", "active", *readonly_fields]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            # Shown once, as the API does; only its owner needs it.
            messages.warning(request, f"Signing secret (shown once): {obj.secret}")


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    readonly_fields = ["started_at", "duration_ms", "status_code", "error", "response_excerpt"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["event", "endpoint", "status", "attempts", "next_attempt_at", "delivered_at"]
    list_filter = ["status"]
    readonly_fields = [
        "endpoint",
        "event",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    ]
    inlines = [AttemptInline]
    actions = ["redeliver"]

    @admin.action(description="Redeliver")
    def redeliver(self, request, queryset):
        for delivery in queryset:
            services.delivery_redeliver(delivery_id=delivery.pk)
        self.message_user(request, f"{queryset.count()} deliveries will be sent again.")
