import zoneinfo

from django import forms
from django.contrib.auth import forms as auth_forms
from django.template import loader
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from agents.models import Cohort
from agents.selectors import skill_catalog
from outbox.services import mail


class ApplyForm(forms.Form):
    name = forms.CharField(max_length=150, label=_("Full name"))
    email = forms.EmailField(max_length=254, label=_("E-mail address"))
    password = forms.CharField(widget=forms.PasswordInput, label=_("Password"), strip=False)
    cohort = forms.ChoiceField(choices=Cohort.choices, label=_("Which describes you best?"))
    languages = forms.CharField(
        max_length=100,
        label=_("Languages you can support customers in"),
        help_text=_("ISO 639-1 codes separated by commas, for example: en, pt"),
    )
    skills = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, label=_("Skills"), choices=()
    )
    country = forms.CharField(
        max_length=2, min_length=2, label=_("Country"), help_text=_("Two letters, for example PT")
    )
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=())
    capacity = forms.IntegerField(min_value=1, initial=2, label=_("Tickets you can handle at once"))
    motivation = forms.CharField(
        widget=forms.Textarea, max_length=1000, required=False, label=_("Why Humanline?")
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
        label=_("Identity document"),
        help_text=_("PDF, JPEG or PNG, up to 10 MB. Only Humanline staff can see it."),
    )


class DecisionForm(forms.Form):
    reason = forms.CharField(max_length=2000, required=False)


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form, its e-mail written in its recipient's language and owed
    through the outbox instead of sent in the request.

    The language is the recipient's profile language if the pages are
    translated into it, else the language of the page that asked (the person
    asking is most likely the recipient).  The mail is a row now, sent by a
    worker, and by the outbox sweep when the worker's task was lost or the mail
    server refused it.  ``send_mail`` is the method Django documents for
    changing how the message goes out; the link in it stays good for
    ``PASSWORD_RESET_TIMEOUT``, long past any retry.
    """

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        from config.locale import ui_language

        language = ui_language(context["user"].language) or translation.get_language()
        with translation.override(language):
            subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
            body = loader.render_to_string(email_template_name, context)
        mail(to=to_email, subject=subject, body=body)
