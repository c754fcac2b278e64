from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render


def home(request):
    user = request.user
    if user.is_authenticated:
        if user.is_operations:
            return redirect("staff-review")
        if user.is_agent:
            return redirect("apply-status")
    return render(request, "home.html")


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
