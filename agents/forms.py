import zoneinfo

from django import forms

from agents.models import Cohort
from agents.selectors import skill_catalog


class ApplyForm(forms.Form):
    name = forms.CharField(max_length=150, label="Full name")
    email = forms.EmailField(max_length=254, label="E-mail address")
    password = forms.CharField(widget=forms.PasswordInput, label="Password", strip=False)
    cohort = forms.ChoiceField(choices=Cohort.choices, label="Which describes you best?")
    languages = forms.CharField(
        max_length=100,
        label="Languages you can support customers in",
        help_text="ISO 639-1 codes separated by commas, for example: en, pt",
    )
    skills = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, label="Skills", choices=()
    )
    country = forms.CharField(
        max_length=2, min_length=2, label="Country", help_text="Two letters, for example PT"
    )
    time_zone = forms.ChoiceField(label="Time zone", choices=())
    capacity = forms.IntegerField(min_value=1, initial=2, label="Tickets you can handle at once")
    motivation = forms.CharField(
        widget=forms.Textarea, max_length=1000, required=False, label="Why Humanline?"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["skills"].choices = [(s.slug, s.name) for s in skill_catalog()]
        self.fields["time_zone"].choices = [
            (name, name) for name in sorted(zoneinfo.available_timezones())
        ]
        self.fields["time_zone"].initial = "Europe/Lisbon"

    def language_list(self) -> list[str]:
        raw = self.cleaned_data.get("languages", "")
        return [part.strip() for part in raw.replace(";", ",").split(",") if part.strip()]


class DocumentForm(forms.Form):
    file = forms.FileField(
        label="Identity document",
        help_text="PDF, JPEG or PNG, up to 10 MB. Only Humanline staff can see it.",
    )


class DecisionForm(forms.Form):
    reason = forms.CharField(max_length=2000, required=False)
