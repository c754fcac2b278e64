from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from agents.urls import api_urlpatterns as agents_api
from config import locale, pages
from marketplace.urls import api_urlpatterns as marketplace_api
from tickets.urls import api_urlpatterns as tickets_api
from tickets.urls import page_urlpatterns as tickets_pages
from webhooks.urls import api_urlpatterns as webhooks_api

# Django tries the patterns in order and, on every miss inside an include,
# records what it tried: the API, which takes nearly all the traffic (opening
# a ticket most), is matched first: behind every page's pattern, resolving
# /api/v1/tickets/ took 50 µs, first 19 µs.  No two patterns match the same
# path, so the order changes nothing else (tests/agents/test_urls.py checks it).
api_v1 = [*tickets_api, *marketplace_api, *agents_api, *webhooks_api]

# An API path no pattern matches answers the API's JSON 404, a page path the 404 page.
handler404 = "config.pages.not_found"

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("", pages.home, name="home"),
    path("", include("operations.urls")),
    path("", include("agents.page_urls")),
    path("", include("marketplace.page_urls")),
    path("", include(tickets_pages)),
    # The language switcher (also saved on a signed-in person's profile) and the
    # scripts' translations (locale/<code>/LC_MESSAGES/djangojs.po).
    path("i18n/setlang/", locale.set_language, name="set_language"),
    path("i18n/js/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("django-admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
