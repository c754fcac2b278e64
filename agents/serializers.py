from rest_framework import serializers

from agents.models import Agent, AgentDocument, AgentReviewEvent, Cohort, Presence, Skill, User

# --- input ------------------------------------------------------------------


class TokenInput(serializers.Serializer):
    username = serializers.CharField(help_text="The e-mail address.")
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class CustomerSignUpInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(trim_whitespace=False, max_length=128)
    name = serializers.CharField(max_length=150)
    language = serializers.CharField(max_length=8, default="", allow_blank=True)


class ApplicationInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(trim_whitespace=False, max_length=128)
    name = serializers.CharField(max_length=150)
    cohort = serializers.ChoiceField(choices=Cohort.choices)
    languages = serializers.ListField(
        child=serializers.CharField(max_length=8), min_length=1, max_length=20
    )
    skills = serializers.ListField(
        child=serializers.CharField(max_length=40), min_length=1, max_length=20
    )
    country = serializers.CharField(max_length=2, min_length=2)
    time_zone = serializers.CharField(max_length=64)
    capacity = serializers.IntegerField(required=False, min_value=1)
    motivation = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class DocumentInput(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=False)


class DecisionInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class SkillInput(serializers.Serializer):
    slug = serializers.SlugField(max_length=40)
    name = serializers.CharField(max_length=80)


# --- output -----------------------------------------------------------------


class TokenOutput(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")


class RealtimeTicketOutput(serializers.Serializer):
    ticket = serializers.CharField(
        help_text="For one WebSocket connect: `/ws/...?ticket=<ticket>`."
    )
    expires_at = serializers.DateTimeField()


class UserOutput(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "name", "role", "language", "email_verified"]


class VerificationInput(serializers.Serializer):
    token = serializers.CharField(max_length=500, help_text="From the link mailed at sign-up.")


class SkillOutput(serializers.ModelSerializer):
    class Meta:
        model = Skill
        fields = ["slug", "name"]


class DocumentOutput(serializers.ModelSerializer):
    class Meta:
        model = AgentDocument
        fields = ["id", "content_type", "size", "sha256", "original_name", "uploaded_at"]


class ReviewEventOutput(serializers.ModelSerializer):
    actor = serializers.EmailField(source="actor.email", allow_null=True, default=None)

    class Meta:
        model = AgentReviewEvent
        fields = ["from_status", "to_status", "reason", "actor", "created_at"]


class AgentOutput(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    name = serializers.CharField(source="user.name")
    languages = serializers.SerializerMethodField()
    skills = serializers.SerializerMethodField()

    class Meta:
        model = Agent
        fields = [
            "id",
            "email",
            "name",
            "status",
            "cohort",
            "languages",
            "skills",
            "country",
            "time_zone",
            "capacity",
            "motivation",
            "applied_at",
            "status_changed_at",
        ]

    def get_languages(self, agent) -> list[str]:
        return [row.code for row in agent.languages.all()]

    def get_skills(self, agent) -> list[str]:
        return [skill.slug for skill in agent.skills.all()]


class AgentReviewOutput(AgentOutput):
    """What staff see: the application with its documents and decisions."""

    documents = DocumentOutput(many=True, read_only=True)
    events = ReviewEventOutput(many=True, read_only=True, source="review_events")

    class Meta(AgentOutput.Meta):
        fields = [*AgentOutput.Meta.fields, "documents", "events"]


class ApplicantEventOutput(serializers.ModelSerializer):
    class Meta:
        model = AgentReviewEvent
        fields = ["from_status", "to_status", "reason", "created_at"]


class ApplicantOutput(AgentOutput):
    """What applicants see of their own application: no staff identities."""

    documents = DocumentOutput(many=True, read_only=True)
    events = ApplicantEventOutput(many=True, read_only=True, source="review_events")

    class Meta(AgentOutput.Meta):
        fields = [*AgentOutput.Meta.fields, "documents", "events"]


class ApplicationOutput(AgentOutput):
    token = serializers.CharField(read_only=True, help_text="Token for the applicant's next calls.")

    class Meta(AgentOutput.Meta):
        fields = [*AgentOutput.Meta.fields, "token"]


# --- presence ----------------------------------------------------------------


class PresenceInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=Presence.choices)


class PresenceOutput(serializers.ModelSerializer):
    class Meta:
        model = Agent
        fields = ["presence", "presence_changed_at", "last_seen_at"]
