from rest_framework import serializers

from webhooks.models import EVENT_NAMES, Attempt, Delivery, Endpoint


class EndpointInput(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_NAMES), allow_empty=False
    )


class EndpointChange(serializers.Serializer):
    url = serializers.URLField(max_length=500, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_NAMES), allow_empty=False, required=False
    )
    active = serializers.BooleanField(required=False)


class EndpointOutput(serializers.ModelSerializer):
    integration = serializers.CharField(source="integration.name")

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "integration",
            "url",
            "events",
            "active",
            "failure_streak",
            "disabled_at",
            "disabled_reason",
            "created_at",
        ]


class EndpointCreatedOutput(EndpointOutput):
    secret = serializers.CharField(help_text="Signs every delivery. Shown this once.")

    class Meta(EndpointOutput.Meta):
        fields = [*EndpointOutput.Meta.fields, "secret"]


class AttemptOutput(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = ["started_at", "duration_ms", "status_code", "error", "response_excerpt"]


class DeliveryOutput(serializers.ModelSerializer):
    event_id = serializers.UUIDField(source="event.id")
    event_type = serializers.CharField(source="event.type")
    attempt_log = AttemptOutput(many=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "delivered_at",
            "created_at",
            "attempt_log",
        ]
