"""The OpenAPI schema's shared parts: the error body, and the errors each operation can give.

Every error the API gives has one body, ``{"error": {"code", "message",
"fields"}}`` (``config.api.exception_handler``), described once here as the
``Error`` component.  ``AutoSchema`` (``DEFAULT_SCHEMA_CLASS``) adds to each
operation the error statuses that follow from how its view is built, so that
no view repeats them:

==========  ==================================================================
400         the operation reads a body, a query parameter or a header
401 / 403   the view authenticates: 401 where the first authenticator names a
            challenge (``WWW-Authenticate``), else 403 for unknown credentials;
            403 for a caller its permissions refuse
404         the path names an object, or the list is paginated (a page past
            the last)
415         the operation reads a body (a media type it does not parse)
429         the view is throttled
==========  ==================================================================

What only the service behind a view knows (409 for a state that does not allow
the change, 404 for a thing named in the body, 422, a 429 of a business rule)
the view declares with ``extend_schema(responses={409: error("...")})``.  A
status the view declares keeps the view's description.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

BODY_METHODS = ("POST", "PUT", "PATCH")


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="What went wrong, for a program to branch on: `invalid`, `invalid_parameter`,"
        " `not_found`, `permission_denied`, `not_authenticated`, `throttled`, or a rule's own"
        " code such as `slot_full` or `offer_expired`."
    )
    message = serializers.CharField(help_text="The same, in a sentence a person can read.")
    fields = serializers.DictField(
        help_text="For input errors: each wrong input (a body field, a query parameter, a"
        " header) with its messages, a list of strings (an object of the same shape for a"
        " nested input).  Empty for other errors."
    )


class ErrorSerializer(serializers.Serializer):
    """Every error the API gives."""

    error = ErrorDetailSerializer()


def error(description: str) -> OpenApiResponse:
    """An error answer with its meaning for this operation, for ``extend_schema(responses=…)``."""
    return OpenApiResponse(ErrorSerializer, description=description)


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, with the error statuses each operation can give."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        """The operation as drf-spectacular describes it, with the error statuses its
        view can give.  ``get_operation`` and ``resolve_serializer`` are its public
        extension points; ``extend_schema`` replaces neither."""
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        statuses = self.error_statuses()
        responses = operation.setdefault("responses", {})
        if statuses:
            body = {"schema": self.resolve_serializer(ErrorSerializer, "response").ref}
            # In each media type the view renders: an error comes in the one asked for.
            content = {media_type: body for media_type in self.map_renderers("media_type")}
            for status, description in statuses.items():
                responses.setdefault(str(status), {"content": content, "description": description})
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    # --- what the view's construction says -------------------------------------------

    def error_statuses(self) -> dict[int, str]:
        statuses: dict[int, str] = {}
        reads_body = self._reads_body()
        if reads_body or self._reads_parameters():
            statuses[400] = (
                "The input does not parse or breaks a rule (`invalid`, `invalid_parameter`, or"
                " the rule's own code); `fields` names each wrong input."
            )
        statuses.update(self._access_statuses())
        named = "{" in self.path
        paginated = self._is_paginated()
        if named or paginated:
            statuses[404] = " ".join(
                part
                for part in (
                    "No such object, or none the caller may see (`not_found`)." if named else "",
                    "A page past the last (`not_found`)." if paginated else "",
                )
                if part
            )
        if reads_body:
            statuses[415] = (
                "The body is in a media type this operation does not read"
                " (`unsupported_media_type`)."
            )
        if self.view.get_throttles():
            statuses[429] = (
                "Too many requests from this client (`throttled`); `Retry-After` says how many"
                " seconds to wait."
            )
        return statuses

    def _reads_body(self) -> bool:
        return self.method in BODY_METHODS and self.get_request_serializer() is not None

    def _reads_parameters(self) -> bool:
        if self._is_paginated():
            return True
        for parameter in self.get_override_parameters():
            location = getattr(parameter, "location", None)
            if location != "path":  # a query or header parameter, or a serializer of them
                return True
        return False

    def _is_paginated(self) -> bool:
        # PaginatedAPIView's lists: their GET answers a page.
        return self.method == "GET" and getattr(self.view, "pagination_class", None) is not None

    def _access_statuses(self) -> dict[int, str]:
        view = self.view
        authenticators = view.get_authenticators()
        open_to_all = all(isinstance(p, AllowAny) for p in view.get_permissions())
        statuses: dict[int, str] = {}
        if authenticators and authenticators[0].authenticate_header(view.request):
            statuses[401] = (
                "Not signed in, or credentials not recognised (`not_authenticated`,"
                " `authentication_failed`)."
            )
            if not open_to_all:
                statuses[403] = "Not allowed to do this (`permission_denied` or the rule's code)."
        elif authenticators:
            statuses[403] = (
                "Credentials were sent but not recognised (`authentication_failed`)."
                if open_to_all
                else "Not signed in, credentials not recognised, or not allowed to do this"
                " (`not_authenticated`, `authentication_failed`, `permission_denied`, or the"
                " rule's own code)."
            )
        elif not open_to_all:
            statuses[403] = "Not allowed to do this (`permission_denied`)."
        return statuses
