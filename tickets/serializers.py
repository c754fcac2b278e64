from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tickets import selectors
from tickets.models import (
    BODY_MAX,
    COMMENT_MAX,
    FEEDBACK_AREA_MAX,
    FEEDBACK_TEXT_MAX,
    INTENT_MAX,
    MESSAGE_MAX,
    SUBJECT_MAX,
    SUMMARY_MAX,
    TRANSCRIPT_MAX_TURNS,
    TRANSCRIPT_TEXT_MAX,
    Feedback,
    FeedbackKind,
    IntegrationApiKey,
    Message,
    Priority,
    Ticket,
    TicketStatus,
)

# --- input ------------------------------------------------------------------


class TranscriptTurnInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=["user", "bot"])
    text = serializers.CharField(max_length=TRANSCRIPT_TEXT_MAX)
    at = serializers.DateTimeField(required=False, allow_null=True)


class HandoffInput(serializers.Serializer):
    transcript = serializers.ListField(
        child=TranscriptTurnInput(), required=False, max_length=TRANSCRIPT_MAX_TURNS
    )
    summary = serializers.CharField(
        required=False, allow_blank=True, max_length=SUMMARY_MAX, trim_whitespace=True
    )
    intent = serializers.CharField(required=False, allow_blank=True, max_length=INTENT_MAX)


class CustomerRefInput(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=200)
    name = serializers.CharField(required=False, allow_blank=True, max_length=150)


class TicketOpenInput(serializers.Serializer):
    subject = serializers.CharField(max_length=SUBJECT_MAX)
    body = serializers.CharField(max_length=BODY_MAX)
    language = serializers.CharField(
        required=False, max_length=8, help_text="ISO 639-1; defaults to the customer's."
    )
    category = serializers.CharField(
        required=False, max_length=40, default="general", help_text="A skill slug."
    )
    priority = serializers.ChoiceField(
        choices=Priority.choices,
        default=Priority.NORMAL,
        help_text="`urgent` is for integrations only.",
    )
    handoff = HandoffInput(required=False)
    customer = CustomerRefInput(
        required=False, help_text="Integrations only: the customer, by e-mail or external_id."
    )


class MessageInput(serializers.Serializer):
    body = serializers.CharField(max_length=MESSAGE_MAX)


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class LanguageInput(serializers.Serializer):
    language = serializers.CharField(max_length=8, help_text="ISO 639-1, such as 'en'.")


class RatingInput(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=COMMENT_MAX)


class FeedbackInput(serializers.Serializer):
    area = serializers.CharField(
        max_length=FEEDBACK_AREA_MAX, help_text="The product area, e.g. `card-payments`."
    )
    kind = serializers.ChoiceField(choices=FeedbackKind.choices)
    text = serializers.CharField(max_length=FEEDBACK_TEXT_MAX)


class RatingOutput(serializers.Serializer):
    ticket_id = serializers.IntegerField()
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(allow_blank=True)


class IntegrationKeyInput(serializers.Serializer):
    integration = serializers.CharField(max_length=100, help_text="The integration's name.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)


# --- output -----------------------------------------------------------------


class PersonOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class HandoffOutput(serializers.Serializer):
    transcript = serializers.ListField(child=serializers.DictField(), source="handoff_transcript")
    summary = serializers.CharField(source="handoff_summary")
    intent = serializers.CharField(source="handoff_intent")


# DRF's own formatting of a timestamp, for bodies written out by hand.
_WHEN = serializers.DateTimeField()


class WaitingReasonOutput(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[
            "no_agent_online",
            "language_unserved",
            "skill_unserved",
            "all_busy",
            "all_passed",
            "offered",
            "next_pass",
        ]
    )
    message = serializers.CharField()
    languages = serializers.ListField(
        child=serializers.CharField(),
        help_text="With language_unserved: the languages the pool serves now, busiest first;"
        " POST …/language/ to continue in one and keep the place in line.",
    )


class TicketOutput(serializers.ModelSerializer):
    """A ticket as the API shows it.

    The fields below describe it (the schema, and DRF's generic rendering);
    ``to_representation`` writes the same body out directly, because building
    a model serializer's fields cost about 1 ms per response, more than the
    ticket's own statements.  A test holds the two to the same output.
    """

    customer = serializers.SerializerMethodField()
    agent = serializers.SerializerMethodField()
    handoff = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField()
    eta_seconds = serializers.SerializerMethodField()
    waiting_reason = serializers.SerializerMethodField()
    rating = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "id",
            "status",
            "subject",
            "body",
            "handoff",
            "language",
            "category",
            "priority",
            "queue_position",
            "eta_seconds",
            "waiting_reason",
            "customer",
            "agent",
            "reopen_count",
            "rating",
            "created_at",
            "queued_at",
            "assigned_at",
            "resolved_at",
            "closed_at",
        ]

    def to_representation(self, ticket) -> dict:
        when = _WHEN.to_representation
        place = self._place(ticket)
        return {
            "id": ticket.pk,
            "status": ticket.status,
            "subject": ticket.subject,
            "body": ticket.body,
            "handoff": self.get_handoff(ticket),
            "language": ticket.language,
            "category": ticket.category,
            "priority": ticket.priority,
            "queue_position": place.position if place else None,
            "eta_seconds": place.eta_seconds if place else None,
            "waiting_reason": self.get_waiting_reason(ticket),
            "customer": self.get_customer(ticket),
            "agent": self.get_agent(ticket),
            "reopen_count": ticket.reopen_count,
            "rating": self.get_rating(ticket),
            "created_at": when(ticket.created_at),
            "queued_at": when(ticket.queued_at),
            "assigned_at": when(ticket.assigned_at),
            "resolved_at": when(ticket.resolved_at),
            "closed_at": when(ticket.closed_at),
        }

    def _place(self, ticket):
        cache = self.context.setdefault("places", {})  # a caller may pass places it knows
        if ticket.pk not in cache:
            cache[ticket.pk] = selectors.queue_place(ticket=ticket)
        return cache[ticket.pk]

    @extend_schema_field(PersonOutput)
    def get_customer(self, ticket) -> dict:
        return {"id": ticket.customer_id, "name": ticket.customer.name}

    @extend_schema_field(PersonOutput(allow_null=True))
    def get_agent(self, ticket) -> dict | None:
        agent = ticket.assigned_agent
        return {"id": agent.pk, "name": agent.user.name} if agent else None

    @extend_schema_field(HandoffOutput(allow_null=True))
    def get_handoff(self, ticket) -> dict | None:
        if not ticket.has_handoff:
            return None
        # HandoffOutput's body, written out.
        return {
            "transcript": [
                {str(key): value for key, value in turn.items()}
                for turn in ticket.handoff_transcript or []
            ],
            "summary": str(ticket.handoff_summary),
            "intent": str(ticket.handoff_intent),
        }

    def get_queue_position(self, ticket) -> int | None:
        place = self._place(ticket)
        return place.position if place else None

    def get_eta_seconds(self, ticket) -> int | None:
        place = self._place(ticket)
        return place.eta_seconds if place else None

    @extend_schema_field(WaitingReasonOutput(allow_null=True))
    def get_waiting_reason(self, ticket) -> dict | None:
        """Why nobody has taken it yet, once it waited long enough to tell (else null).

        Worked out for a whole list at once (its page), each lane's rules read
        once, rather than ticket by ticket."""
        from marketplace.services.escalation import customer_waiting_reasons

        reasons = self.context.get("waiting_reasons")
        if reasons is None or ticket.pk not in reasons.get("asked", ()):
            batch = self.parent.instance if self.parent is not None else [ticket]
            batch = list(batch) if ticket in batch else [ticket]
            reasons = self.context["waiting_reasons"] = {
                "asked": {t.pk for t in batch},
                "told": customer_waiting_reasons(batch),
            }
        return reasons["told"].get(ticket.pk)

    def get_rating(self, ticket) -> dict | None:
        rating = getattr(ticket, "rating", None)
        return {"score": rating.score, "comment": rating.comment} if rating else None


class MessageOutput(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["id", "ticket_id", "author", "author_role", "body", "created_at"]

    @extend_schema_field(PersonOutput)
    def get_author(self, message) -> dict:
        return {"id": message.author_id, "name": message.author.name}


class FeedbackOutput(serializers.ModelSerializer):
    agent = serializers.SerializerMethodField()

    class Meta:
        model = Feedback
        fields = ["id", "ticket_id", "agent", "area", "kind", "text", "created_at"]

    @extend_schema_field(PersonOutput)
    def get_agent(self, feedback) -> dict:
        return {"id": feedback.agent_id, "name": feedback.agent.user.name}


class IntegrationKeyOutput(serializers.ModelSerializer):
    integration = serializers.CharField(source="integration.name")
    integration_id = serializers.IntegerField(help_text="For its webhooks' endpoints.")
    active = serializers.BooleanField(source="is_active")

    class Meta:
        model = IntegrationApiKey
        fields = [
            "id",
            "integration",
            "integration_id",
            "name",
            "prefix",
            "active",
            "created_at",
            "revoked_at",
            "last_used_at",
        ]


class IntegrationKeyCreatedOutput(IntegrationKeyOutput):
    key = serializers.CharField(help_text="Shown this once; only its hash is stored.")

    class Meta(IntegrationKeyOutput.Meta):
        fields = [*IntegrationKeyOutput.Meta.fields, "key"]


class QualityOutput(serializers.Serializer):
    agent_id = serializers.IntegerField()
    score = serializers.IntegerField(help_text="0-100; see docs/architecture.md.")
    average_rating = serializers.FloatField(allow_null=True)
    ratings_count = serializers.IntegerField()
    resolved_count = serializers.IntegerField()
    reopened_count = serializers.IntegerField()
    reopen_rate = serializers.FloatField()


TICKET_STATUSES = TicketStatus.values


class IdentityOutput(serializers.Serializer):
    """One of an integration's customers, as the person it stands for sees it."""

    id = serializers.IntegerField()
    integration = serializers.CharField(source="integration.name")
    email = serializers.EmailField(help_text="The address the integration gave.")
    created_at = serializers.DateTimeField()
    linked = serializers.BooleanField(help_text="Its conversations are this account's.")
    linked_at = serializers.DateTimeField(allow_null=True)
    tickets = serializers.IntegerField(help_text="Tickets the integration opened for it.")
