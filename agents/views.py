"""Pages about people: apply, the applicant's status, the staff review queue."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required, user_passes_test
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from agents import selectors, services
from agents.apis import document_response, verification_link
from agents.forms import ApplyForm, DecisionForm, DocumentForm, PasswordResetForm
from agents.models import AgentDocument, AgentStatus
from config import pages, throttles, uploads
from config.errors import DomainError, InvalidInput

staff_required = user_passes_test(lambda u: u.is_authenticated and u.is_operations)


def _apply_errors_to_form(form, exc: InvalidInput) -> None:
    for field, problems in exc.fields.items():
        target = field if field in form.fields else None
        for problem in problems:
            form.add_error(target, problem)


def apply(request):
    if request.user.is_authenticated and request.user.is_agent:
        return redirect("apply-status")
    if request.method == "POST" and (minutes := throttles.refusal(request, "sign_up")):
        response = render(
            request,
            "agents/apply.html",
            {"form": ApplyForm(), "retry_minutes": minutes},
            status=429,
        )
        response["Retry-After"] = str(minutes * 60)
        return response
    form = ApplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            agent = services.agent_apply(
                application=services.Application(
                    email=data["email"],
                    password=data["password"],
                    name=data["name"],
                    cohort=data["cohort"],
                    languages=form.language_list(),
                    skills=data["skills"],
                    country=data["country"],
                    time_zone=data["time_zone"],
                    capacity=data["capacity"],
                    motivation=data["motivation"],
                )
            )
        except InvalidInput as exc:
            _apply_errors_to_form(form, exc)
        else:
            login(request, agent.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Application received. Next: upload an identity document."))
            return redirect("apply-status")
    return render(request, "agents/apply.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def apply_status(request):
    agent = selectors.agent_for_user(user=request.user)
    if agent is None:
        raise Http404
    form = DocumentForm()
    if request.method == "POST":
        form = DocumentForm(request.POST, request.FILES)
        if (refused := uploads.refusal(request)) is not None:
            form.errors.clear()
            form.add_error("file", refused.message)
        elif form.is_valid():
            try:
                services.agent_document_upload(agent=agent, upload=form.cleaned_data["file"])
            except DomainError as exc:
                form.add_error("file", exc.message)
            else:
                messages.success(request, _("Document received. Our team will review it shortly."))
                return redirect("apply-status")
    agent = selectors.agent_for_user(user=request.user)
    return render(
        request,
        "agents/status.html",
        {"agent": agent, "form": form, "can_upload": agent.status in ("applied", "in_review")},
        status=400 if form.errors else 200,
    )


@staff_required
def staff_review(request):
    wanted = request.GET.get("status", AgentStatus.IN_REVIEW)
    if wanted not in AgentStatus.values and wanted != "all":
        wanted = AgentStatus.IN_REVIEW
    agents = selectors.agent_review_queue(status=None if wanted == "all" else wanted)
    return render(
        request,
        "agents/review.html",
        {
            "agents": agents,
            "wanted": wanted,
            "counts": selectors.review_counts(),
            "statuses": AgentStatus.choices,
        },
    )


DECISIONS = {
    "approve": services.agent_approve,
    "reject": services.agent_reject,
    "suspend": services.agent_suspend,
    "reinstate": services.agent_reinstate,
}


@staff_required
@require_POST
def staff_decide(request, agent_id: int, decision: str):
    action = DECISIONS.get(decision)
    if action is None:
        raise Http404
    form = DecisionForm(request.POST)
    form.is_valid()
    try:
        agent = action(
            actor=request.user, agent_id=agent_id, reason=form.cleaned_data.get("reason", "")
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{agent.user.name} is now {agent.get_status_display().lower()}.")
    return pages.back_to(request, "staff-review")


@staff_required
def staff_document(request, document_id):
    document = get_object_or_404(AgentDocument, pk=document_id)
    return document_response(document)


class PasswordReset(auth_views.PasswordResetView):
    """Django's password reset, its e-mails limited per client address
    (``PASSWORD_RESET_THROTTLE``): each request sends mail to whoever the address
    names.  Each e-mail is in its recipient's language and goes through the
    outbox (``PasswordResetForm``)."""

    form_class = PasswordResetForm

    def post(self, request, *args, **kwargs):
        if minutes := throttles.refusal(request, "password_reset"):
            response = self.render_to_response(
                self.get_context_data(form=self.get_form(), retry_minutes=minutes), status=429
            )
            response["Retry-After"] = str(minutes * 60)
            return response
        return super().post(request, *args, **kwargs)


def verify_email(request, token: str):
    """The mailed link: a page that asks for a click, so that a mail scanner
    fetching the link verifies nothing; the POST verifies."""
    if request.method != "POST":
        return render(request, "agents/verify_email.html", {"token": token})
    try:
        services.email_verify(token=token)
    except InvalidInput as exc:
        return render(
            request, "agents/verify_email.html", {"token": token, "error": exc.message}, status=400
        )
    messages.success(request, _("Your e-mail address is verified."))
    return redirect("help" if request.user.is_authenticated else "login")


@login_required
@require_POST
def resend_verification(request):
    if minutes := throttles.refusal(request, "verification"):
        messages.error(
            request,
            ngettext(
                "Too many requests just now. Try again in %(minutes)d minute.",
                "Too many requests just now. Try again in %(minutes)d minutes.",
                minutes,
            )
            % {"minutes": minutes},
        )
    else:
        try:
            services.email_verification_send(user=request.user, link=verification_link(request))
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, _("We sent a new link to %(email)s.") % {"email": request.user.email}
            )
    return pages.back_to(request, "help")
