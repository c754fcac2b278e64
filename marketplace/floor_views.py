"""The live operations floor: the page (``/ops/``) and its JSON (``/api/v1/admin/floor/``).

The page renders the figures once on the server, so it reads without
JavaScript; ``static/js/floor.js`` then polls the JSON every few seconds and
redraws the numbers and charts in place.  Both read ``marketplace.floor``.
"""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Sum
from django.shortcuts import redirect, render
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import AgentStatus
from agents.selectors import agent_review_queue, review_counts
from config import params
from config.permissions import IsOperations
from marketplace import floor, payroll_views
from marketplace.models import ShiftSlot, SlotStatus
from tickets.models import PRIORITY_RANK

POLL_SECONDS = 2.5
REVIEW_SHOWN = 5


def _target(request) -> int | None:
    """``?target=`` seconds for "answered within target", 1 to 3600 (a 400 otherwise)."""
    return params.integer(request.GET, "target", maximum=3600)


def _shift_fill(*, hours: int = 24) -> dict:
    """Places booked over places published in the next ``hours``, for the planner link."""
    now = timezone.now()
    totals = ShiftSlot.objects.filter(
        status=SlotStatus.PUBLISHED, ends_at__gt=now, starts_at__lt=now + timedelta(hours=hours)
    ).aggregate(booked=Sum("booked_count"), headcount=Sum("headcount"))
    booked, headcount = totals["booked"] or 0, totals["headcount"] or 0
    return {
        "booked": booked,
        "headcount": headcount,
        "percent": round(100 * booked / headcount) if headcount else None,
    }


def _wait_targets(figures: floor.Floor) -> list[tuple[str, int]]:
    """Each priority's wait target, the most urgent first, for the line under the heading."""
    return sorted(figures.wait_targets.items(), key=lambda item: -PRIORITY_RANK.get(item[0], 0))


@login_required
def ops_floor(request):
    if not request.user.is_operations:
        messages.error(request, "The operations floor is for operations staff.")
        return redirect("home")
    figures = floor.floor_now(target_seconds=_target(request))
    in_review = review_counts()[AgentStatus.IN_REVIEW]
    review = list(agent_review_queue(status=AgentStatus.IN_REVIEW)[:REVIEW_SHOWN])
    return render(
        request,
        "marketplace/floor.html",
        {
            "floor": figures,
            "wait_targets": _wait_targets(figures),
            "past_target_more": max(0, figures.past_target_count - len(figures.past_target)),
            "in_review": in_review,
            "review": review,
            "review_more": max(0, in_review - len(review)),
            **payroll_views.pay_periods_context(),
            "fill": _shift_fill(),
            "poll_ms": int(POLL_SECONDS * 1000),
        },
    )


class FloorView(APIView):
    """The floor's live figures: queue, waits, agents, offers, surge, feedback themes."""

    permission_classes = [IsOperations]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "target",
                {"type": "integer", "minimum": 1, "maximum": 3600},
                description="One answer target in seconds for every priority (1-3600);"
                " by default each priority's own (WAIT_TARGET_SECONDS).",
                required=False,
            )
        ],
        responses={
            200: inline_serializer(
                "Floor",
                {
                    "now": serializers.DateTimeField(),
                    "target_seconds": serializers.IntegerField(allow_null=True),
                    "wait_targets": serializers.DictField(child=serializers.IntegerField()),
                    "waiting": serializers.IntegerField(),
                    "longest_wait_seconds": serializers.IntegerField(),
                    "answered_last_hour": serializers.IntegerField(),
                    "wait_p50_seconds": serializers.FloatField(allow_null=True),
                    "wait_p90_seconds": serializers.FloatField(allow_null=True),
                    "within_target_share": serializers.FloatField(allow_null=True),
                    "agents_online": serializers.IntegerField(),
                    "agents_busy": serializers.IntegerField(),
                    "agents_away": serializers.IntegerField(),
                    "free_seats": serializers.IntegerField(),
                    "offers_decided_last_hour": serializers.IntegerField(),
                    "offers_accepted_last_hour": serializers.IntegerField(),
                    "offer_acceptance_rate": serializers.FloatField(allow_null=True),
                    "declined_not_my_area_last_hour": serializers.IntegerField(),
                    "surge_multiplier": serializers.CharField(),
                    "past_target_count": serializers.IntegerField(),
                    "staffing_required_now": serializers.IntegerField(
                        help_text="Agents this half hour requires (the shift planner's figure)."
                    ),
                    "staffing_expected_next_hour": serializers.FloatField(
                        help_text="Tickets expected in this half hour and the next."
                    ),
                    "predicted_service_level_next_hour": serializers.FloatField(
                        help_text="Share of them the agents online now would answer within"
                        " staffing_answer_seconds (Erlang C)."
                    ),
                    "staffing_answer_seconds": serializers.IntegerField(),
                    "staffing_service_level_goal": serializers.FloatField(),
                    "past_target": serializers.ListField(child=serializers.DictField()),
                    "longest_waiting": serializers.ListField(child=serializers.DictField()),
                    "buckets": serializers.ListField(child=serializers.DictField()),
                    "feedback_themes": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
        tags=["operations"],
    )
    def get(self, request):
        return Response(floor.floor_now(target_seconds=_target(request)).as_dict())
