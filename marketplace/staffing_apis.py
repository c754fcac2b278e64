"""HTTP API for staffing (staff): Erlang C on demand, the plan of a day, publish what is missing."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config import params
from config.permissions import IsOperations
from config.schema import error
from marketplace import staffing_selectors as selectors
from marketplace.services import staffing as services
from marketplace.staffing import StaffingInputError, erlang_c

# --- schema pieces ------------------------------------------------------------


def _errors(bad_input: str) -> dict:
    return {400: error(bad_input)}


class ErlangOutput(serializers.Serializer):
    agents = serializers.IntegerField(help_text="The fewest agents that meet the goal.")
    service_level = serializers.FloatField(
        help_text="Share of tickets answered within answer_seconds with that many agents."
    )
    mean_wait_seconds = serializers.FloatField(help_text="Mean wait over all tickets.")
    occupancy = serializers.FloatField(help_text="Share of the agents' seats in use.")
    seats = serializers.IntegerField(help_text="floor(agents × capacity).")
    traffic_erlangs = serializers.FloatField(help_text="arrivals per second × handle_seconds.")
    probability_of_waiting = serializers.FloatField(help_text="Erlang C: share that waits at all.")


class InputsOutput(serializers.Serializer):
    handle_seconds = serializers.FloatField()
    handle_samples = serializers.IntegerField()
    handle_measured = serializers.BooleanField(
        help_text="False: too few resolved tickets measured it; the default is used."
    )
    mean_capacity = serializers.FloatField()
    answer_seconds = serializers.IntegerField()
    service_level = serializers.FloatField()
    weeks = serializers.IntegerField()
    min_agents = serializers.IntegerField()


class SlotPlanOutput(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    expected_arrivals = serializers.FloatField()
    required = serializers.IntegerField()
    published = serializers.IntegerField()
    booked = serializers.IntegerField()
    attended = serializers.IntegerField(allow_null=True)
    missing = serializers.IntegerField()
    predicted_service_level = serializers.FloatField()


class DayPlanOutput(serializers.Serializer):
    date = serializers.DateField()
    inputs = InputsOutput()
    slots = SlotPlanOutput(many=True)


class PublishInput(serializers.Serializer):
    date = serializers.DateField(
        required=False, help_text="The first day (UTC); today when left out."
    )
    days = serializers.IntegerField(
        required=False, default=7, min_value=1, max_value=services.MAX_DAYS
    )


class PublishOutput(serializers.Serializer):
    publication_id = serializers.IntegerField(allow_null=True)
    created = serializers.IntegerField()
    headcount_added = serializers.IntegerField()
    slot_ids = serializers.ListField(child=serializers.IntegerField())


# --- views --------------------------------------------------------------------


def _number(request, name: str, maximum: float, *, minimum: float = 0, required=True):
    return params.number(request.GET, name, minimum=minimum, maximum=maximum, required=required)


class StaffingErlangView(APIView):
    """Erlang C: the agents a queue needs for a service-level goal (docs: "Staffing")."""

    permission_classes = [IsOperations]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "arrivals_per_hour",
                {"type": "number", "minimum": 0, "maximum": 1_000_000},
                required=True,
                description="Tickets arriving per hour, 0 to 1000000.",
            ),
            OpenApiParameter(
                "handle_seconds",
                {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 86_400},
                required=True,
                description="Mean seconds a ticket holds a seat (assignment to resolve),"
                " above 0, at most 86400.",
            ),
            OpenApiParameter(
                "answer_seconds",
                {"type": "number", "minimum": 0, "maximum": 86_400},
                required=True,
                description="The answer-time target in seconds, 0 to 86400.",
            ),
            OpenApiParameter(
                "service_level",
                {
                    "type": "number",
                    "minimum": 0,
                    "exclusiveMinimum": True,
                    "maximum": 1,
                    "exclusiveMaximum": True,
                },
                required=True,
                description="The share to answer within answer_seconds, above 0 and below 1.",
            ),
            OpenApiParameter(
                "capacity",
                {"type": "number", "minimum": 1, "maximum": 20},
                required=False,
                description="Tickets an agent holds at once, on average, 1 to 20 (default 1).",
            ),
        ],
        responses={
            200: ErlangOutput,
            **_errors(
                "A parameter missing, malformed or impossible (invalid_parameter, named in fields)."
            ),
        },
        tags=["staffing"],
    )
    def get(self, request):
        arrivals = _number(request, "arrivals_per_hour", 1_000_000)
        handle = _number(request, "handle_seconds", 86_400)
        answer = _number(request, "answer_seconds", 86_400)
        goal = _number(request, "service_level", 1)
        capacity = _number(request, "capacity", 20, minimum=1, required=False) or 1
        try:
            figures = erlang_c(arrivals, handle, answer, service_level=goal, capacity=capacity)
        except StaffingInputError as exc:
            raise params.ParameterError(
                f"{exc.field}: {exc.message}", fields={exc.field: [exc.message]}
            ) from None
        return Response(
            ErlangOutput(
                {
                    "agents": figures.agents,
                    "service_level": round(figures.service_level, 6),
                    "mean_wait_seconds": round(figures.mean_wait_seconds, 3),
                    "occupancy": round(figures.occupancy, 6),
                    "seats": figures.seats,
                    "traffic_erlangs": round(figures.traffic_erlangs, 6),
                    "probability_of_waiting": round(figures.probability_of_waiting, 6),
                }
            ).data
        )


class StaffingDayView(APIView):
    """Required, published, booked and attended headcount per half hour of a UTC day."""

    permission_classes = [IsOperations]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "date",
                OpenApiTypes.DATE,
                required=False,
                description="The day, YYYY-MM-DD (UTC); today when left out.",
            )
        ],
        responses={
            200: DayPlanOutput,
            **_errors("The date is malformed (invalid_parameter, named in fields)."),
        },
        tags=["staffing"],
    )
    def get(self, request):
        day = params.day(request.GET, "date") or selectors.today()
        return Response(DayPlanOutput(selectors.staffing_day(day=day)).data)


class StaffingPublishView(APIView):
    """Publish, in one audited action, the places missing in the next days (safe to repeat)."""

    permission_classes = [IsOperations]

    @extend_schema(
        request=PublishInput,
        responses={
            201: OpenApiResponse(PublishOutput, description="Slots were published."),
            200: OpenApiResponse(PublishOutput, description="Nothing was missing."),
            **_errors("The body is invalid (invalid, named in fields)."),
        },
        tags=["staffing"],
    )
    def post(self, request):
        data = PublishInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        first_day = values.get("date") or selectors.today()
        result = services.staffing_publish_missing(
            actor=request.user, first_day=first_day, days=values["days"]
        )
        body = {
            "publication_id": result.publication.pk if result.publication else None,
            "created": len(result.slots),
            "headcount_added": result.headcount_added,
            "slot_ids": [slot.pk for slot in result.slots],
        }
        return Response(
            PublishOutput(body).data,
            status=status.HTTP_201_CREATED if result.slots else status.HTTP_200_OK,
        )
