from django.urls import path

from config import params  # noqa: F401 (registers the <id:…> converter)
from webhooks import apis

BASE = "admin/integrations/<id:integration_id>/webhooks/"

api_urlpatterns = [
    path(BASE, apis.EndpointsView.as_view(), name="api-webhooks"),
    path(f"{BASE}<id:endpoint_id>/", apis.EndpointView.as_view(), name="api-webhook"),
    path(
        f"{BASE}<id:endpoint_id>/deliveries/",
        apis.DeliveriesView.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        f"{BASE}<id:endpoint_id>/deliveries/<id:delivery_id>/redeliver/",
        apis.RedeliverView.as_view(),
        name="api-webhook-redeliver",
    ),
]
