"""``Authorization: Api-Key <key>`` for integrations (the company's chatbot or CRM)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from tickets.principals import IntegrationPrincipal


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        from tickets.services import integration_key_authenticate

        key = integration_key_authenticate(value.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return IntegrationPrincipal(integration=key.integration, key=key), key

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tickets.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`: integrations, keys issued by staff.",
        }
