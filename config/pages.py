from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults

from config.api import error_body

API_PREFIX = "/api/"


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


def not_found(request, exception=None):
    """Django's 404 (``handler404``): under /api/, the API's error body, as from a view.

    A path no URL pattern matches never reaches a view: an id longer than any
    id (``<id:…>``), a misspelt path.  An API client gets the same JSON as for
    an object that does not exist; a page gets the site's 404 page.
    """
    if request.path.startswith(API_PREFIX):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)
