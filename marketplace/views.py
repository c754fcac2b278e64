"""Pages for shifts: the agent's shift board and the staff planner with its staffing view.

They parse, call the services, and render."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, user_passes_test
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from agents import presence
from agents.models import AgentStatus, Presence
from config import pages, params
from config.errors import DomainError, InvalidInput
from marketplace import charts, selectors, staffing_selectors
from marketplace.forms import BoardFilterForm, SlotForm, StaffingPublishForm, WeekForm
from marketplace.models import ShiftSlot
from marketplace.services import shifts, staffing

staff_required = user_passes_test(lambda u: u.is_authenticated and u.is_operations)


def _agent_or_404(request):
    agent = getattr(request.user, "agent", None) if request.user.is_agent else None
    if agent is None:
        raise Http404
    return agent


def _errors_to_form(form, exc: InvalidInput, mapping: dict[str, str]) -> None:
    for field, problems in (exc.fields or {None: [exc.message]}).items():
        target = mapping.get(field, field)
        target = target if target in form.fields else None
        for problem in problems:
            form.add_error(target, problem)


# --- the agent's shift board ---------------------------------------------------------


@login_required
def agent_board(request):
    agent = _agent_or_404(request)
    context = {"agent": agent, "presences": Presence.choices}
    if agent.status != AgentStatus.APPROVED:
        return render(request, "marketplace/board.html", context, status=403)
    filters = BoardFilterForm(request.GET or None)
    values = filters.cleaned_data if filters.is_valid() else {}
    context.update(
        filters=filters,
        slots=selectors.shift_board(
            agent=agent,
            day=values.get("date"),
            language=values.get("language") or None,
            skill=values.get("skill") or None,
        )[:100],
        bookings=selectors.agent_bookings(agent=agent, upcoming=True),
        record=selectors.attendance_record(agent=agent),
        cutoff_hours=settings.HUMANLINE["SHIFT_CANCEL_CUTOFF_HOURS"],
    )
    return render(request, "marketplace/board.html", context)


@login_required
@require_POST
def agent_book(request, slot_id: int):
    agent = _agent_or_404(request)
    if not ShiftSlot.objects.filter(pk=slot_id).exists():
        raise Http404
    try:
        shifts.shift_book(agent_id=agent.pk, slot_id=slot_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Booked. See you there!"))
    return pages.back_to(request, "agent-shifts")


@login_required
@require_POST
def agent_cancel(request, slot_id: int):
    agent = _agent_or_404(request)
    if not ShiftSlot.objects.filter(pk=slot_id).exists():
        raise Http404
    try:
        booking = shifts.shift_booking_cancel(agent_id=agent.pk, slot_id=slot_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        late = " " + _("It was inside the cut-off, so it counts as a late cancellation.")
        messages.success(
            request,
            _("Booking cancelled.") + (late if booking.status == "late_cancelled" else ""),
        )
    return redirect("agent-shifts")


@login_required
@require_POST
def agent_presence(request):
    agent = _agent_or_404(request)
    try:
        agent = presence.agent_presence_set(agent_id=agent.pk, status=request.POST.get("status"))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, _("You are %(presence)s.") % {"presence": agent.get_presence_display().lower()}
        )
    return redirect("agent-shifts")


# --- the staff planner ------------------------------------------------------------------


def _staffing(request) -> dict:
    """The staffing view of the planner: the plan of the day asked for (UTC), with its chart."""
    day = params.day(request.GET, "date") or staffing_selectors.today()
    plan = staffing_selectors.staffing_day(day=day)
    slots = plan["slots"]
    return {
        **plan,
        "chart": charts.staffing_chart(slots),
        "previous_day": day - timedelta(days=1),
        "next_day": day + timedelta(days=1),
        "short": sum(1 for s in slots if s["missing"]),
        "missing": sum(s["missing"] for s in slots),
        "publish_form": StaffingPublishForm(initial={"date": day}),
    }


def _planner(request, slot_form=None, week_form=None, status=200):
    return render(
        request,
        "marketplace/planner.html",
        {
            "slot_form": slot_form or SlotForm(),
            "week_form": week_form or WeekForm(),
            "slots": selectors.staff_slots()[:300],
            "staffing": _staffing(request),
        },
        status=status,
    )


def _incentive(data) -> dict:
    return {
        "incentive_kind": data.get("incentive_kind") or "",
        "incentive_amount": data.get("incentive_amount"),
    }


@staff_required
def staff_planner(request):
    return _planner(request)


@staff_required
@require_POST
def staff_publish_slot(request):
    form = SlotForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            slot = shifts.shift_slot_publish(
                actor=request.user,
                spec=shifts.SlotSpec(
                    starts_at=datetime.combine(data["day"], data["start"], UTC),
                    ends_at=datetime.combine(data["day"], data["end"], UTC),
                    headcount=data["headcount"],
                    language=data["language"],
                    skill=data["skill"],
                    **_incentive(data),
                ),
            )
        except InvalidInput as exc:
            _errors_to_form(
                form, exc, {"starts_at": "start", "ends_at": "end", "incentive": "incentive_amount"}
            )
        else:
            messages.success(request, f"Slot published: {slot.starts_at:%a %d %b %H:%M} UTC.")
            return redirect("staff-shifts")
    return _planner(request, slot_form=form, status=400)


@staff_required
@require_POST
def staff_publish_week(request):
    form = WeekForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = shifts.shift_week_publish(
                actor=request.user,
                template=shifts.WeekTemplate(
                    week_start=data["week_start"],
                    weekdays=tuple(data["weekdays"]),
                    day_start=data["day_start"],
                    day_end=data["day_end"],
                    headcount=data["headcount"],
                    time_zone=data["time_zone"],
                    language=data["language"],
                    skill=data["skill"],
                    **_incentive(data),
                ),
            )
        except InvalidInput as exc:
            _errors_to_form(form, exc, {"incentive": "incentive_amount"})
        else:
            messages.success(
                request,
                f"Week published: {len(result.created)} slots"
                + (f" ({result.skipped} skipped)." if result.skipped else "."),
            )
            return redirect("staff-shifts")
    return _planner(request, week_form=form, status=400)


@staff_required
@require_POST
def staff_publish_missing(request):
    form = StaffingPublishForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a day and how many days to publish.")
        return redirect("staff-shifts")
    day, days = form.cleaned_data["date"], form.cleaned_data["days"]
    try:
        result = staffing.staffing_publish_missing(actor=request.user, first_day=day, days=days)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if result.slots:
            messages.success(
                request,
                f"Published {len(result.slots)} slots with {result.headcount_added} places"
                " where the forecast needs more agents.",
            )
        else:
            messages.info(request, "Nothing is missing: every half hour has its places published.")
    return redirect(f"{reverse('staff-shifts')}?date={day.isoformat()}")


@staff_required
@require_POST
def staff_cancel_slot(request, slot_id: int):
    if not ShiftSlot.objects.filter(pk=slot_id).exists():
        raise Http404
    try:
        slot = shifts.shift_slot_cancel(
            actor=request.user, slot_id=slot_id, reason=request.POST.get("reason", "")
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Slot {slot.starts_at:%a %d %b %H:%M} cancelled; agents told.")
    return redirect("staff-shifts")
