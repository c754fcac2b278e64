from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.urls import reverse
from django.utils.html import format_html

from agents import services
from agents.models import (
    Agent,
    AgentDocument,
    AgentLanguage,
    AgentReviewEvent,
    PresenceInterval,
    Skill,
    User,
)
from config.errors import DomainError


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "role", "is_active", "date_joined"]
    list_filter = ["role", "is_active", "is_staff"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["name", "role", "language"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
    ]
    add_fieldsets = [
        (None, {"fields": ["email", "name", "role", "password1", "password2"]}),
    ]


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "is_active"]
    list_editable = ["is_active"]
    search_fields = ["slug", "name"]


class LanguageInline(admin.TabularInline):
    model = AgentLanguage
    extra = 0


class DocumentInline(admin.TabularInline):
    model = AgentDocument
    extra = 0
    can_delete = False
    fields = ["link", "content_type", "size", "sha256", "uploaded_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Document")
    def link(self, document):
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">open</a>',
            reverse("staff-document", args=[document.pk]),
        )


class EventInline(admin.TabularInline):
    model = AgentReviewEvent
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "actor", "from_status", "to_status", "reason"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


def _decision_action(service, label, needs_reason):
    def action(modeladmin, request, queryset):
        reason = "Decided in the Django admin." if needs_reason else ""
        done = 0
        for agent in queryset:
            try:
                service(actor=request.user, agent_id=agent.pk, reason=reason)
                done += 1
            except DomainError as exc:
                modeladmin.message_user(
                    request, f"{agent.user.email}: {exc.message}", messages.ERROR
                )
        if done:
            modeladmin.message_user(request, f"{label}: {done} agent(s).")

    action.short_description = label
    action.__name__ = service.__name__
    return action


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["user", "status", "presence", "cohort", "country", "capacity", "applied_at"]
    list_filter = ["status", "presence", "cohort", "country", "skills"]
    search_fields = ["user__email", "user__name"]
    # Status changes only through the review services (audited), never by editing.
    readonly_fields = [
        "user",
        "status",
        "applied_at",
        "status_changed_at",
        "presence",
        "presence_changed_at",
        "last_seen_at",
    ]
    inlines = [LanguageInline, DocumentInline, EventInline]
    actions = [
        _decision_action(services.agent_approve, "Approve selected applications", False),
        _decision_action(services.agent_reject, "Reject selected applications", True),
        _decision_action(services.agent_suspend, "Suspend selected agents", True),
        _decision_action(services.agent_reinstate, "Reinstate selected agents", True),
    ]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AgentReviewEvent)
class AgentReviewEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "agent", "from_status", "to_status", "actor"]
    list_filter = ["to_status"]
    search_fields = ["agent__user__email", "reason"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PresenceInterval)
class PresenceIntervalAdmin(admin.ModelAdmin):
    list_display = ["agent", "status", "started_at", "ended_at", "ended_reason"]
    list_filter = ["status", "ended_reason"]
    search_fields = ["agent__user__email"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
