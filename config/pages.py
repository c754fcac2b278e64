from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme


def back_to(request, default: str):
    """Where a form's ``next`` field sends the user after a POST: a path of this
    site, or ``default`` (a URL name) when it names anywhere else."""
    wanted = request.POST.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(wanted)
    return redirect(default)


def home(request):
    user = request.user
    if user.is_authenticated:
        if user.is_operations:
            return redirect("ops-floor")
        if user.is_agent:
            agent = getattr(user, "agent", None)
            approved = agent is not None and agent.status == "approved"
            return redirect("agent-console" if approved else "apply-status")
    return render(request, "home.html")
