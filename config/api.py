"""API plumbing shared by every app: error bodies and pagination.

Every error answers ``{"error": {"code", "message", "fields"}}`` so that a
client can branch on ``code`` and show ``fields`` next to its inputs; the
OpenAPI schema describes that body once (``config.schema``).
"""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from config import params
from config.errors import DomainError


class Pagination(PageNumberPagination):
    """``?page=`` (from 1) and ``?page_size=`` (1 to 200, 50 by default), parsed strictly.

    A page or size that is not a whole number in range is a 400 naming it
    (``config.params``), as every other query parameter; a page past the last
    is DRF's 404.  Lists answer ``{count, next, previous, results}``.
    """

    page_size_query_param = "page_size"
    max_page_size = 200
    last_page_strings = ()  # a page is a number

    def paginate_queryset(self, queryset, request, view=None):
        params.integer(request.query_params, self.page_query_param)
        params.integer(request.query_params, self.page_size_query_param, maximum=self.max_page_size)
        return super().paginate_queryset(queryset, request, view=view)

    def get_paginated_response_schema(self, schema):
        envelope = super().get_paginated_response_schema(schema)
        envelope["required"] = ["count", "next", "previous", "results"]  # every page has all four
        return envelope

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.page_query_param: {"minimum": 1, "maximum": params.MAX_ID},
            self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters


class KeysetPagination(CursorPagination):
    """Keyset pages, newest first: ``?cursor=`` (from a page's ``next`` or
    ``previous``) and ``?page_size=`` (1 to 200, 50 by default).

    A page is the rows after the last id the previous one showed (``WHERE id <
    …  ORDER BY id DESC LIMIT …``, the primary key's index): it costs the same
    on the first page and the thousandth, and no page counts the list.  Rows
    added meanwhile never shift a page.  Lists answer ``{next, previous,
    results}``.  A cursor that is not one of ours is a 400 naming ``cursor``.
    """

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        params.integer(request.query_params, self.page_size_query_param, maximum=self.max_page_size)
        return super().paginate_queryset(queryset, request, view=view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            cursor = None
            position = "?"
        else:
            position = cursor.position if cursor is not None else None
        if position is not None and not (
            position.isascii() and position.isdigit() and 0 < int(position) <= params.MAX_ID
        ):
            raise params.ParameterError(
                "cursor: not a cursor from a page of this list",
                fields={"cursor": ["Use the next or previous link of a page."]},
            )
        return cursor

    def get_paginated_response_schema(self, schema):
        envelope = super().get_paginated_response_schema(schema)
        envelope["required"] = ["next", "previous", "results"]
        return envelope

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
        return parameters


class DayField(serializers.DateField):
    """A calendar day, in input: 0001-01-02 to 9999-12-24.

    A day's hours in any time zone, and the week that starts on it, must fit
    in the calendar a datetime holds (years 1 to 9999): 9999-12-31 has no
    next day to end it.  Outside, a 400 names the field, not an overflow (500).
    """

    FIRST = params.FIRST_DAY
    LAST = params.LAST_DAY

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "")
        kwargs["help_text"] = (
            f"{kwargs['help_text']} From {self.FIRST.isoformat()} to {self.LAST.isoformat()}."
        ).strip()
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        if not self.FIRST <= day <= self.LAST:
            raise serializers.ValidationError(
                f"Give a day from {self.FIRST.isoformat()} to {self.LAST.isoformat()}."
            )
        return day


class PaginatedAPIView(APIView):
    """A view that answers a list a page at a time.

    ``pagination_class`` is what the OpenAPI schema reads: the list is
    described as the page envelope, with ``page`` and ``page_size``.
    """

    pagination_class = Pagination

    def paginated(self, queryset, render) -> Response:
        """The page the request asks for, each row turned into JSON by ``render(rows)``."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(render(page))


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
