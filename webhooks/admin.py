from django import forms
from django.contrib import admin, messages

from config.errors import DomainError, InvalidInput
from webhooks import services
from webhooks.models import EVENT_TYPES, Attempt, Delivery, Endpoint


class EndpointForm(forms.ModelForm):
    """The endpoint as the API takes it: the same checks (``endpoint_checked``), so the
    admin cannot save a private or plain-http destination the API would refuse."""

    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=EVENT_TYPES, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Endpoint
        fields = ["integration", "url", "events", "active"]

    def clean(self):
        data = super().clean()
        if "url" in data and "events" in data:
            try:
                data["url"], data["events"] = services.endpoint_checked(
                    url=data["url"], events=data["events"]
                )
            except InvalidInput as exc:
                for field, problems in exc.fields.items():
                    for problem in problems:
                        self.add_error(field, problem)
        return data


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ["url", "integration", "active", "failure_streak", "disabled_at", "created_at"]
    list_filter = ["active", "integration"]
    readonly_fields = ["failure_streak", "disabled_at", "disabled_reason", "created_by"]
    fields = ["integration", "url", "events", "active", *readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        # An endpoint stays with the integration it was made for (as in the API).
        return [*self.readonly_fields, "integration"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        # Through the services, as the API: switching an endpoint on again starts
        # its failure count afresh.
        if change:
            services.endpoint_update(
                endpoint_id=obj.pk, url=obj.url, events=obj.events, active=obj.active
            )
            obj.refresh_from_db()
            return
        made = services.endpoint_create(
            actor=request.user, integration_id=obj.integration_id, url=obj.url, events=obj.events
        )
        if not obj.active:
            services.endpoint_update(endpoint_id=made.pk, active=False)
        obj.pk = made.pk
        obj.refresh_from_db()
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
        sent = 0
        for delivery in queryset:
            try:
                services.delivery_redeliver(delivery_id=delivery.pk)
            except DomainError as exc:
                self.message_user(request, f"Delivery {delivery.pk}: {exc.message}", messages.ERROR)
            else:
                sent += 1
        self.message_user(request, f"{sent} deliveries will be sent again.")
