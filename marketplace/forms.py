import zoneinfo

from django import forms

from agents.selectors import skill_catalog
from marketplace.models import IncentiveKind

WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


def _skill_choices():
    return [("", "Any skill"), *[(s.slug, s.name) for s in skill_catalog()]]


class _FocusAndIncentive(forms.Form):
    language = forms.CharField(
        max_length=2, required=False, label="Language focus", help_text="ISO 639-1, e.g. pt"
    )
    skill = forms.ChoiceField(required=False, label="Skill focus", choices=())
    incentive_kind = forms.ChoiceField(
        required=False,
        label="Incentive",
        choices=[("", "None"), *IncentiveKind.choices],
    )
    incentive_amount = forms.DecimalField(
        required=False, max_digits=8, decimal_places=2, min_value=0, label="Incentive amount"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["skill"].choices = _skill_choices()


class SlotForm(_FocusAndIncentive):
    field_order = ["day", "start", "end", "headcount"]
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="Day")
    start = forms.TimeField(
        widget=forms.TimeInput(attrs={"type": "time", "step": 1800}), label="Start (UTC)"
    )
    end = forms.TimeField(
        widget=forms.TimeInput(attrs={"type": "time", "step": 1800}), label="End (UTC)"
    )
    headcount = forms.IntegerField(min_value=1, initial=3, label="Headcount")


class WeekForm(_FocusAndIncentive):
    field_order = ["week_start", "weekdays", "day_start", "day_end", "headcount", "time_zone"]
    week_start = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), label="Week starting"
    )
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        initial=[0, 1, 2, 3, 4],
        label="Days",
    )
    day_start = forms.TimeField(
        widget=forms.TimeInput(attrs={"type": "time", "step": 1800}),
        label="Daily start",
        initial="08:00",
    )
    day_end = forms.TimeField(
        widget=forms.TimeInput(attrs={"type": "time", "step": 1800}),
        label="Daily end",
        initial="20:00",
    )
    headcount = forms.IntegerField(min_value=1, initial=3, label="Headcount per half hour")
    time_zone = forms.ChoiceField(label="Time zone", choices=(), initial="UTC")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [
            (name, name) for name in sorted(zoneinfo.available_timezones())
        ]


class BoardFilterForm(forms.Form):
    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    language = forms.CharField(required=False, max_length=2)
    skill = forms.ChoiceField(required=False, choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["skill"].choices = _skill_choices()


class StaffingPublishForm(forms.Form):
    """The planner's "Publish what is missing": from a day, for that day or the week ahead."""

    date = forms.DateField(label="From")
    days = forms.TypedChoiceField(
        coerce=int, choices=[(7, "7 days from this day"), (1, "This day only")], initial=7
    )
