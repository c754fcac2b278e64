"""Demo shifts for the embedded default: the next two days, 08:00-20:00 UTC."""

from datetime import time, timedelta

from django.utils import timezone

from agents.models import User
from marketplace.services import shifts


def load_demo_shifts() -> int:
    staff = User.objects.filter(email="ops@example.com").first()
    if staff is None:
        return 0
    tomorrow = timezone.now().date() + timedelta(days=1)
    result = shifts.shift_week_publish(
        actor=staff,
        template=shifts.WeekTemplate(
            week_start=tomorrow,
            weekdays=(tomorrow.weekday(), (tomorrow.weekday() + 1) % 7),
            day_start=time(8),
            day_end=time(20),
            headcount=3,
            headcount_by_hour={12: 5, 13: 5},
        ),
    )
    return len(result.created)
