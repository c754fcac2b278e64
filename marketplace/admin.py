"""Django admin for shifts.  Slots are published and cancelled through the services only."""

from django import forms
from django.contrib import admin, messages

from config.errors import DomainError, InvalidInput
from marketplace.models import ShiftBooking, ShiftEvent, ShiftSlot, StaffingPublication
from marketplace.services import shifts


class SlotAddForm(forms.ModelForm):
    """The add form validates through the service's rules (grid, past, headcount…)."""

    class Meta:
        model = ShiftSlot
        fields = [
            "starts_at",
            "ends_at",
            "headcount",
            "language",
            "skill",
            "incentive_kind",
            "incentive_amount",
            "incentive_currency",
        ]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        self.spec = shifts.SlotSpec(
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            headcount=data["headcount"],
            language=data.get("language") or "",
            skill=data["skill"].slug if data.get("skill") else "",
            incentive_kind=data.get("incentive_kind") or "",
            incentive_amount=data.get("incentive_amount"),
            incentive_currency=data.get("incentive_currency") or "",
        )
        try:
            shifts.shift_slot_validate(spec=self.spec)
        except InvalidInput as exc:
            for field, problems in exc.fields.items():
                target = {"incentive": "incentive_amount"}.get(field, field)
                for problem in problems:
                    self.add_error(target if target in self.fields else None, problem)
        return data


class BookingInline(admin.TabularInline):
    model = ShiftBooking
    extra = 0
    can_delete = False
    fields = ["agent", "status", "booked_at", "cancelled_at", "online_seconds"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.action(description="Cancel selected slots (agents are released and told)")
def cancel_slots(modeladmin, request, queryset):
    done = 0
    for slot in queryset:
        try:
            shifts.shift_slot_cancel(
                actor=request.user, slot_id=slot.pk, reason="Cancelled in the Django admin."
            )
            done += 1
        except DomainError as exc:
            modeladmin.message_user(request, f"Slot {slot.pk}: {exc.message}", messages.ERROR)
    if done:
        modeladmin.message_user(request, f"Cancelled {done} slot(s).")


@admin.register(ShiftSlot)
class ShiftSlotAdmin(admin.ModelAdmin):
    list_display = [
        "starts_at",
        "ends_at",
        "headcount",
        "booked_count",
        "fill_rate",
        "language",
        "skill",
        "incentive_kind",
        "status",
    ]
    list_filter = ["status", "language", "skill", "incentive_kind"]
    date_hierarchy = "starts_at"
    inlines = [BookingInline]
    actions = [cancel_slots]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = SlotAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # Published slots change only through the services (audited).
        if obj is None:
            return []
        return [f.name for f in ShiftSlot._meta.fields]

    def save_model(self, request, obj, form, change):
        if change:
            return
        slot = shifts.shift_slot_publish(actor=request.user, spec=form.spec)
        obj.pk = slot.pk
        obj.__dict__.update({k: v for k, v in slot.__dict__.items() if not k.startswith("_")})

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ShiftBooking)
class ShiftBookingAdmin(admin.ModelAdmin):
    list_display = ["slot", "agent", "status", "booked_at", "cancelled_at", "online_seconds"]
    list_filter = ["status"]
    search_fields = ["agent__user__email"]
    list_select_related = ["slot", "agent__user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ShiftEvent)
class ShiftEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "slot", "booking", "actor"]
    list_filter = ["kind"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(StaffingPublication)
class StaffingPublicationAdmin(admin.ModelAdmin):
    """Read-only: each row is the audit of one "publish what is missing"."""

    list_display = ["created_at", "actor", "first_day", "days", "slots_created", "headcount_added"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


from marketplace import pay_admin  # noqa: E402, F401  (the ledger and payroll pages)
