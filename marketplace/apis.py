"""HTTP API for shifts: staff publish and cancel slots; approved agents book and cancel."""

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent, AgentStatus
from config import params
from config.api import PaginatedAPIView
from config.errors import Forbidden
from config.permissions import IsAgentUser, IsOperations
from config.schema import error
from marketplace import selectors
from marketplace.models import ShiftSlot, SlotStatus
from marketplace.serializers import (
    AttendanceOutput,
    BookingOutput,
    SlotCancelInput,
    SlotInput,
    SlotOutput,
    StaffSlotDetailOutput,
    StaffSlotOutput,
    WeekInput,
    WeekOutput,
)
from marketplace.services import shifts as services


def _incentive(data) -> dict:
    incentive = data.get("incentive") or {}
    return {
        "incentive_kind": incentive.get("kind", ""),
        "incentive_amount": incentive.get("amount"),
        "incentive_currency": incentive.get("currency", ""),
    }


def _approved_agent(request) -> Agent:
    agent = request.user.agent
    if agent.status != AgentStatus.APPROVED:
        raise Forbidden(
            _("The shift marketplace is for approved agents; you are %(status)s.")
            % {"status": agent.status},
            code="agent_not_approved",
        )
    return agent


def _day_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        OpenApiTypes.DATE,
        required=False,
        description=f"{description} YYYY-MM-DD, from {params.FIRST_DAY} to {params.LAST_DAY}.",
    )


# The query parameters of the shift lists, each read by ``config.params``.
_BOARD_FILTERS = [
    _day_parameter("date", "A day in the agent's own time zone."),
    OpenApiParameter("language", str, required=False, description="ISO 639-1, such as 'en'."),
    OpenApiParameter("skill", str, required=False, description="A skill's slug."),
]
_STAFF_FILTERS = [
    _day_parameter("date_from", "Slots starting on this day (UTC) or later."),
    _day_parameter("date_to", "Slots starting on this day (UTC) or earlier."),
    OpenApiParameter("status", enum=SlotStatus.values, required=False),
]


# --- staff ---------------------------------------------------------------------


class AdminShiftsView(PaginatedAPIView):
    permission_classes = [IsOperations]

    @extend_schema(
        parameters=_STAFF_FILTERS, responses={200: StaffSlotOutput(many=True)}, tags=["shifts"]
    )
    def get(self, request):
        query = request.query_params
        slots = selectors.staff_slots(
            date_from=params.day(query, "date_from"),
            date_to=params.day(query, "date_to"),
            status=params.choice(query, "status", SlotStatus.values),
        )
        return self.paginated(slots, lambda page: StaffSlotOutput(page, many=True).data)

    @extend_schema(request=SlotInput, responses={201: StaffSlotOutput}, tags=["shifts"])
    def post(self, request):
        data = SlotInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        slot = services.shift_slot_publish(
            actor=request.user,
            spec=services.SlotSpec(
                starts_at=values["starts_at"],
                ends_at=values["ends_at"],
                headcount=values["headcount"],
                language=values["language"],
                skill=values["skill"],
                **_incentive(values),
            ),
        )
        return Response(StaffSlotOutput(slot).data, status=status.HTTP_201_CREATED)


class AdminShiftWeekView(APIView):
    """Publish a week from a template in one action: 30-minute slots each chosen day."""

    permission_classes = [IsOperations]

    @extend_schema(request=WeekInput, responses={201: WeekOutput}, tags=["shifts"])
    def post(self, request):
        data = WeekInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = services.shift_week_publish(
            actor=request.user,
            template=services.WeekTemplate(
                week_start=values["week_start"],
                day_start=values["day_start"],
                day_end=values["day_end"],
                headcount=values["headcount"],
                weekdays=tuple(values["weekdays"]),
                headcount_by_hour=values.get("headcount_by_hour"),
                time_zone=values["time_zone"],
                language=values["language"],
                skill=values["skill"],
                **_incentive(values),
            ),
        )
        body = {"created": len(result.created), "skipped": result.skipped, "slots": result.created}
        return Response(WeekOutput(body).data, status=status.HTTP_201_CREATED)


class AdminShiftDetailView(APIView):
    permission_classes = [IsOperations]

    @extend_schema(responses={200: StaffSlotDetailOutput}, tags=["shifts"])
    def get(self, request, slot_id: int):
        get_object_or_404(ShiftSlot, pk=slot_id)
        return Response(StaffSlotDetailOutput(selectors.slot_for_staff(slot_id=slot_id)).data)


class AdminShiftCancelView(APIView):
    permission_classes = [IsOperations]

    @extend_schema(
        request=SlotCancelInput,
        responses={
            200: StaffSlotDetailOutput,
            409: error("The slot is cancelled already, or has ended."),
        },
        tags=["shifts"],
    )
    def post(self, request, slot_id: int):
        get_object_or_404(ShiftSlot, pk=slot_id)
        data = SlotCancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.shift_slot_cancel(
            actor=request.user, slot_id=slot_id, reason=data.validated_data["reason"]
        )
        return Response(StaffSlotDetailOutput(selectors.slot_for_staff(slot_id=slot_id)).data)


class AdminAgentAttendanceView(APIView):
    permission_classes = [IsOperations]

    @extend_schema(responses={200: AttendanceOutput}, tags=["shifts"])
    def get(self, request, agent_id: int):
        agent = get_object_or_404(Agent, pk=agent_id)
        return Response(AttendanceOutput(selectors.attendance_record(agent=agent)).data)


# --- agents --------------------------------------------------------------------


class ShiftBoardView(PaginatedAPIView):
    """Open slots the agent could book, with free places; filter by date, language, skill."""

    permission_classes = [IsAgentUser]

    @extend_schema(
        parameters=_BOARD_FILTERS, responses={200: SlotOutput(many=True)}, tags=["shifts"]
    )
    def get(self, request):
        agent = _approved_agent(request)
        query = request.query_params
        slots = selectors.shift_board(
            agent=agent,
            day=params.day(query, "date"),
            language=params.slug(query, "language", max_length=8),
            skill=params.slug(query, "skill", max_length=40),
        )
        return self.paginated(slots, lambda page: SlotOutput(page, many=True).data)


class MyShiftsView(PaginatedAPIView):
    permission_classes = [IsAgentUser]

    @extend_schema(responses={200: BookingOutput(many=True)}, tags=["shifts"])
    def get(self, request):
        bookings = selectors.agent_bookings(agent=request.user.agent)
        return self.paginated(bookings, lambda page: BookingOutput(page, many=True).data)


class ShiftBookView(APIView):
    permission_classes = [IsAgentUser]

    @extend_schema(
        request=None,
        responses={
            201: BookingOutput,
            409: error(
                "The slot is cancelled, has started or is full, or the agent holds this or an"
                " overlapping booking."
            ),
        },
        tags=["shifts"],
    )
    def post(self, request, slot_id: int):
        agent = _approved_agent(request)
        get_object_or_404(ShiftSlot, pk=slot_id)
        booking = services.shift_book(agent_id=agent.pk, slot_id=slot_id)
        return Response(BookingOutput(booking).data, status=status.HTTP_201_CREATED)


class ShiftCancelView(APIView):
    permission_classes = [IsAgentUser]

    @extend_schema(
        request=None,
        responses={
            200: BookingOutput,
            409: error(
                "The agent holds no booking in this slot, or it can no longer be cancelled."
            ),
        },
        tags=["shifts"],
    )
    def post(self, request, slot_id: int):
        agent = request.user.agent
        get_object_or_404(ShiftSlot, pk=slot_id)
        booking = services.shift_booking_cancel(agent_id=agent.pk, slot_id=slot_id)
        return Response(BookingOutput(booking).data)


class MyAttendanceView(APIView):
    permission_classes = [IsAgentUser]

    @extend_schema(responses={200: AttendanceOutput}, tags=["shifts"])
    def get(self, request):
        record = selectors.attendance_record(agent=request.user.agent)
        return Response(AttendanceOutput(record).data)
