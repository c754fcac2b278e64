"""API plumbing shared by every app: error bodies and pagination.

Every error answers ``{"error": {"code", "message", "fields"}}`` so that a
client can branch on ``code`` and show ``fields`` next to its inputs.
"""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import DomainError


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail) -> dict:
    if isinstance(detail, dict):
        return {key: _messages(value) for key, value in detail.items()}
    return {}


def _messages(value):
    if isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return [str(item) for item in value]
        return [_messages(item) for item in value]
    if isinstance(value, dict):
        return {key: _messages(item) for key, item in value.items()}
    return [str(value)]


def _first_text(value) -> str | None:
    # Nested serializers report {"handoff": {"transcript": {0: {"role": [...]}}}}.
    if isinstance(value, str):
        return value
    items = value.values() if isinstance(value, dict) else value
    for item in items:
        text = _first_text(item)
        if text:
            return text
    return None


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {}
        message = "; ".join(exc.messages)
        return Response(error_body("invalid", message, fields), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        if isinstance(exc.detail, list):
            message = "; ".join(str(item) for item in exc.detail)
        else:
            first = next(iter(fields.items()), None)
            text = _first_text(first[1]) if first else None
            message = f"{first[0]}: {text}" if text else "Invalid input."
            if first and first[0] == "non_field_errors":
                message = str(text)
        response.data = error_body("invalid", message, fields)
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(str(code), str(detail))
    return response
