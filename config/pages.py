from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render


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


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
