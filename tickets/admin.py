from django.contrib import admin, messages
from django.utils.html import format_html

from config.errors import DomainError
from tickets import services
from tickets.models import (
    Feedback,
    Integration,
    IntegrationApiKey,
    IntegrationCustomer,
    Message,
    Rating,
    Ticket,
    TicketEvent,
)


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EventInline(_ReadOnlyInline):
    model = TicketEvent
    fields = ["created_at", "from_status", "to_status", "actor", "integration", "agent", "reason"]
    readonly_fields = fields


class MessageInline(_ReadOnlyInline):
    model = Message
    fields = ["created_at", "author_role", "author", "body"]
    readonly_fields = fields


class RatingInline(_ReadOnlyInline):
    model = Rating
    fields = ["created_at", "score", "agent", "comment"]
    readonly_fields = fields


class FeedbackInline(_ReadOnlyInline):
    model = Feedback
    fields = ["created_at", "kind", "area", "agent", "text"]
    readonly_fields = fields


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "subject",
        "status",
        "priority",
        "language",
        "category",
        "customer",
        "assigned_agent",
        "created_at",
    ]
    list_filter = ["status", "priority", "language", "category", "integration", "created_at"]
    search_fields = ["=id", "subject", "body", "customer__email", "assigned_agent__user__email"]
    date_hierarchy = "created_at"
    list_select_related = ["customer", "assigned_agent__user"]
    # The lifecycle changes through the services (audited), never by editing.
    readonly_fields = [
        "customer",
        "integration",
        "status",
        "priority",
        "assigned_agent",
        "assigned_at",
        "queued_at",
        "resolved_at",
        "closed_at",
        "reopen_count",
        "created_at",
        "status_changed_at",
        "handoff_transcript",
        "handoff_summary",
        "handoff_intent",
    ]
    fields = ["subject", "body", "language", "category", *readonly_fields]
    inlines = [EventInline, MessageInline, RatingInline, FeedbackInline]
    actions = ["cancel_selected"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel selected waiting tickets")
    def cancel_selected(self, request, queryset):
        done = 0
        for ticket in queryset:
            try:
                services.ticket_cancel(
                    ticket_id=ticket.pk, caller=request.user, reason="Cancelled by staff."
                )
                done += 1
            except DomainError as exc:
                self.message_user(request, f"#{ticket.pk}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"Cancelled {done} ticket(s).")


@admin.register(TicketEvent)
class TicketEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "ticket", "from_status", "to_status", "actor", "agent"]
    list_filter = ["to_status", "from_status"]
    search_fields = ["=ticket__id", "reason", "actor__email"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ["created_at", "ticket", "agent", "score"]
    list_filter = ["score"]
    search_fields = ["=ticket__id", "agent__user__email", "comment"]
    readonly_fields = ["ticket", "agent", "score", "comment", "created_at"]


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "area", "agent", "ticket"]
    list_filter = ["kind", "area", "created_at"]
    search_fields = ["area", "text", "agent__user__email"]
    readonly_fields = ["ticket", "agent", "area", "kind", "text", "created_at"]


class KeyInline(_ReadOnlyInline):
    model = IntegrationApiKey
    fields = ["prefix", "name", "created_at", "revoked_at", "last_used_at"]
    readonly_fields = fields


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [KeyInline]


@admin.register(IntegrationApiKey)
class IntegrationApiKeyAdmin(admin.ModelAdmin):
    """Keys are made by ``integration_key_create``; the raw key is shown once, here."""

    list_display = ["prefix", "integration", "name", "active", "created_at", "last_used_at"]
    list_filter = ["integration", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "integration__name"]
    fields = ["integration", "name"]
    actions = ["revoke_selected"]

    @admin.display(boolean=True)
    def active(self, key):
        return key.is_active

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["integration", "name", "prefix", "created_by", "created_at", "revoked_at"]

    def get_fields(self, request, obj=None):
        return self.fields if obj is None else self.get_readonly_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return
        raw, key = services.integration_key_create(
            actor=request.user, integration_name=obj.integration.name, name=obj.name
        )
        obj.pk = key.pk
        self.message_user(
            request,
            format_html("The new key, shown this once — copy it now: <code>{}</code>", raw),
            messages.WARNING,
        )

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request, queryset):
        for key in queryset.filter(revoked_at__isnull=True):
            services.integration_key_revoke(actor=request.user, key_id=key.pk)
        self.message_user(request, "Revoked.")


@admin.register(IntegrationCustomer)
class IntegrationCustomerAdmin(admin.ModelAdmin):
    list_display = ["external_id", "integration", "customer", "created_at"]
    search_fields = ["external_id", "customer__email"]
    list_filter = ["integration"]
    readonly_fields = ["integration", "external_id", "customer", "created_at"]
