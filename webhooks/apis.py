"""Staff manage an integration's webhook endpoints and read their delivery log."""

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiCallback, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import PaginatedAPIView
from config.errors import NotFound
from config.permissions import IsOperations
from webhooks import services
from webhooks.models import Attempt, Delivery, Endpoint
from webhooks.serializers import (
    EVENT_BODIES,
    DeliveryOutput,
    EndpointChange,
    EndpointCreatedOutput,
    EndpointInput,
    EndpointOutput,
)


def _endpoint(integration_id: int, endpoint_id: int) -> Endpoint:
    endpoint = (
        Endpoint.objects.select_related("integration")
        .filter(pk=endpoint_id, integration_id=integration_id)
        .first()
    )
    if endpoint is None:
        raise NotFound("This integration has no webhook endpoint with this id.")
    return endpoint


class EndpointsView(PaginatedAPIView):
    permission_classes = [IsOperations]

    @extend_schema(responses={200: EndpointOutput(many=True)}, tags=["webhooks"])
    def get(self, request, integration_id: int):
        endpoints = Endpoint.objects.select_related("integration").filter(
            integration_id=integration_id
        )
        return self.paginated(endpoints, lambda page: EndpointOutput(page, many=True).data)

    @extend_schema(
        request=EndpointInput,
        responses={201: EndpointCreatedOutput},
        tags=["webhooks"],
        callbacks=[
            OpenApiCallback(
                name=type_name,
                path="{$request.body#/url}",
                decorator=extend_schema(
                    summary=f"A {type_name} delivery",
                    description=(
                        "A JSON POST signed in the `Humanline-Signature` header"
                        " (`t=<unix time>,v1=<HMAC-SHA256 of '<t>.<body>' keyed with the"
                        " secret>`), with `Humanline-Event-Id` and `Humanline-Event-Type`."
                        " Any 2xx within 5 s acknowledges it; anything else is retried."
                    ),
                    request=body,
                    responses={200: None},
                ),
            )
            for type_name, body in EVENT_BODIES.items()
        ],
    )
    def post(self, request, integration_id: int):
        data = EndpointInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(
            actor=request.user, integration_id=integration_id, **data.validated_data
        )
        response = Response(EndpointCreatedOutput(endpoint).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class EndpointView(APIView):
    permission_classes = [IsOperations]

    @extend_schema(responses={200: EndpointOutput}, tags=["webhooks"])
    def get(self, request, integration_id: int, endpoint_id: int):
        return Response(EndpointOutput(_endpoint(integration_id, endpoint_id)).data)

    @extend_schema(request=EndpointChange, responses={200: EndpointOutput}, tags=["webhooks"])
    def patch(self, request, integration_id: int, endpoint_id: int):
        _endpoint(integration_id, endpoint_id)
        data = EndpointChange(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint_id=endpoint_id, **data.validated_data)
        return Response(EndpointOutput(endpoint).data)


class DeliveriesView(PaginatedAPIView):
    """An endpoint's delivery log, newest first, each with its attempts."""

    permission_classes = [IsOperations]

    @extend_schema(responses={200: DeliveryOutput(many=True)}, tags=["webhooks"])
    def get(self, request, integration_id: int, endpoint_id: int):
        endpoint = _endpoint(integration_id, endpoint_id)
        deliveries = (
            Delivery.objects.filter(endpoint=endpoint)
            .select_related("event")
            .prefetch_related(Prefetch("attempt_log", queryset=Attempt.objects.order_by("-id")))
        )
        return self.paginated(deliveries, lambda page: DeliveryOutput(page, many=True).data)


class RedeliverView(APIView):
    permission_classes = [IsOperations]

    @extend_schema(request=None, responses={202: DeliveryOutput}, tags=["webhooks"])
    def post(self, request, integration_id: int, endpoint_id: int, delivery_id: int):
        endpoint = _endpoint(integration_id, endpoint_id)
        if not Delivery.objects.filter(pk=delivery_id, endpoint=endpoint).exists():
            raise NotFound("This endpoint has no delivery with this id.")
        delivery = services.delivery_redeliver(delivery_id=delivery_id)
        return Response(DeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)
