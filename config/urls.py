from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from agents.urls import api_urlpatterns as agents_api
from config import pages
from marketplace.urls import api_urlpatterns as marketplace_api
from tickets.urls import api_urlpatterns as tickets_api
from tickets.urls import page_urlpatterns as tickets_pages

api_v1 = [*agents_api, *marketplace_api, *tickets_api]

urlpatterns = [
    path("", pages.home, name="home"),
    path("healthz", pages.healthz, name="healthz"),
    path("", include("agents.page_urls")),
    path("", include("marketplace.page_urls")),
    path("", include(tickets_pages)),
    path("django-admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
