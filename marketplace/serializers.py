from rest_framework import serializers

from config.api import DayField
from marketplace.models import IncentiveKind, ShiftBooking, ShiftSlot, SlotStatus

# --- input ------------------------------------------------------------------


class IncentiveInput(serializers.Serializer):
    """Money with a kind: ``{"kind": "bonus", "amount": "10.00", "currency": "EUR"}``."""

    kind = serializers.ChoiceField(choices=IncentiveKind.choices)
    amount = serializers.DecimalField(max_digits=8, decimal_places=2)
    currency = serializers.CharField(max_length=3, min_length=3, required=False)


class SlotInput(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    headcount = serializers.IntegerField(min_value=1)
    language = serializers.CharField(max_length=8, required=False, allow_blank=True, default="")
    skill = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    incentive = IncentiveInput(required=False, allow_null=True, default=None)


class WeekInput(serializers.Serializer):
    week_start = DayField(help_text="The first day of the week to fill.")
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        default=[0, 1, 2, 3, 4],
        help_text="0 = Monday … 6 = Sunday.",
    )
    day_start = serializers.TimeField(help_text="Local time, on the 30-minute grid.")
    day_end = serializers.TimeField()
    headcount = serializers.IntegerField(min_value=1)
    headcount_by_hour = serializers.DictField(
        child=serializers.IntegerField(min_value=0),
        required=False,
        help_text='Local hour → headcount, e.g. {"12": 6, "13": 6}; 0 publishes no slot.',
    )
    time_zone = serializers.CharField(max_length=64, default="UTC")
    language = serializers.CharField(max_length=8, required=False, allow_blank=True, default="")
    skill = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    incentive = IncentiveInput(required=False, allow_null=True, default=None)

    def validate_headcount_by_hour(self, value):
        try:
            return {int(hour): count for hour, count in value.items()}
        except ValueError as exc:
            raise serializers.ValidationError("Keys are hours, 0 to 23.") from exc


class SlotCancelInput(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


# --- output -----------------------------------------------------------------


class IncentiveOutput(serializers.Serializer):
    kind = serializers.CharField(source="incentive_kind")
    amount = serializers.DecimalField(
        source="incentive_amount", max_digits=8, decimal_places=2, coerce_to_string=True
    )
    currency = serializers.CharField(source="incentive_currency")


class _SlotBase(serializers.ModelSerializer):
    skill = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    incentive = serializers.SerializerMethodField()
    free_places = serializers.IntegerField(read_only=True)
    duration_minutes = serializers.SerializerMethodField()

    def get_incentive(self, slot) -> dict | None:
        return IncentiveOutput(slot).data if slot.incentive_kind else None

    def get_duration_minutes(self, slot) -> int:
        return slot.duration_seconds // 60


class SlotOutput(_SlotBase):
    """A slot as an agent sees it on the board."""

    my_booking = serializers.SerializerMethodField()

    class Meta:
        model = ShiftSlot
        fields = [
            "id",
            "starts_at",
            "ends_at",
            "duration_minutes",
            "headcount",
            "free_places",
            "language",
            "skill",
            "incentive",
            "my_booking",
        ]

    def get_my_booking(self, slot) -> str | None:
        return getattr(slot, "my_booking_status", None)


class SlotBookingOutput(serializers.ModelSerializer):
    agent_id = serializers.IntegerField()
    email = serializers.EmailField(source="agent.user.email")
    name = serializers.CharField(source="agent.user.name")

    class Meta:
        model = ShiftBooking
        fields = ["id", "agent_id", "email", "name", "status", "booked_at", "cancelled_at"]


class StaffSlotOutput(_SlotBase):
    """A slot as staff see it in the planner, with its fill rate."""

    fill_rate = serializers.FloatField(read_only=True)
    created_by = serializers.EmailField(source="created_by.email")
    status = serializers.ChoiceField(choices=SlotStatus.choices)

    class Meta:
        model = ShiftSlot
        fields = [
            "id",
            "starts_at",
            "ends_at",
            "duration_minutes",
            "headcount",
            "booked_count",
            "free_places",
            "fill_rate",
            "language",
            "skill",
            "incentive",
            "status",
            "created_by",
            "created_at",
            "cancelled_at",
            "cancel_reason",
        ]


class StaffSlotDetailOutput(StaffSlotOutput):
    bookings = SlotBookingOutput(many=True, read_only=True)

    class Meta(StaffSlotOutput.Meta):
        fields = [*StaffSlotOutput.Meta.fields, "bookings"]


class BookingOutput(serializers.ModelSerializer):
    slot = SlotOutput(read_only=True)

    class Meta:
        model = ShiftBooking
        fields = [
            "id",
            "status",
            "starts_at",
            "ends_at",
            "booked_at",
            "cancelled_at",
            "online_seconds",
            "slot",
        ]


class WeekOutput(serializers.Serializer):
    created = serializers.IntegerField()
    skipped = serializers.IntegerField()
    slots = StaffSlotOutput(many=True)


class AttendanceOutput(serializers.Serializer):
    agent_id = serializers.IntegerField()
    upcoming = serializers.IntegerField()
    attended = serializers.IntegerField()
    no_show = serializers.IntegerField()
    late_cancelled = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    attendance_rate = serializers.FloatField(allow_null=True)
