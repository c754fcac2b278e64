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


# --- what a receiver is sent (the OpenAPI schema's callbacks) -------------------------


class _CustomerRef(serializers.Serializer):
    external_id = serializers.CharField(
        allow_null=True, help_text="The integration's own id of the customer."
    )


class TicketRef(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="The ticket's status when the event happened.")
    customer = _CustomerRef()


class _AgentRef(serializers.Serializer):
    first_name = serializers.CharField()


class _Author(serializers.Serializer):
    role = serializers.ChoiceField(choices=["agent"])
    first_name = serializers.CharField()


class _Message(serializers.Serializer):
    id = serializers.IntegerField()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()
    author = _Author()


class _Rating(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(allow_blank=True)


class _Waiting(serializers.Serializer):
    code = serializers.CharField(help_text="Why nobody has taken the ticket yet.")
    message = serializers.CharField(help_text="What the customer is told, in their language.")
    languages = serializers.ListField(
        child=serializers.CharField(),
        help_text="When nobody online speaks the ticket's language: the ISO 639-1 codes of"
        " those the pool serves now, in which the customer may continue (else empty).",
    )


def _event(type_name: str, data_fields: dict) -> type[serializers.Serializer]:
    """The envelope of one event type: id, type, created, and its data."""
    data = type(
        f"{_camel(type_name)}Data",
        (serializers.Serializer,),
        {"ticket": TicketRef(), **data_fields},
    )
    return type(
        f"{_camel(type_name)}Event",
        (serializers.Serializer,),
        {
            "__doc__": f"The body of a `{type_name}` delivery.",
            "id": serializers.UUIDField(help_text="De-duplicate by it: a delivery may repeat."),
            "type": serializers.ChoiceField(choices=[type_name]),
            "created": serializers.DateTimeField(help_text="Order by it."),
            "data": data(),
        },
    )


def _camel(type_name: str) -> str:
    return "".join(part.title() for part in type_name.replace(".", "_").split("_"))


EVENT_BODIES = {
    "ticket.assigned": _event("ticket.assigned", {"agent": _AgentRef()}),
    "ticket.message": _event("ticket.message", {"message": _Message()}),
    "ticket.status": _event(
        "ticket.status",
        {
            "status": serializers.ChoiceField(
                choices=["resolved", "closed", "cancelled", "reopened"]
            )
        },
    ),
    "ticket.rating": _event("ticket.rating", {"rating": _Rating()}),
    "ticket.waiting": _event("ticket.waiting", {"waiting": _Waiting()}),
}
