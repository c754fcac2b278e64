"""HTTP API for dispatch and pricing: answering offers, the rate card, the surge."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config import channel_send, params
from config.permissions import IsAgentUser, IsOperations
from config.schema import error
from marketplace import events
from marketplace.models import DeclineReason, Offer, OfferStatus, RateCard
from marketplace.pay_apis import MoneyField
from marketplace.services import dispatch
from marketplace.services import pricing as pricing_services


class OfferOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    pay = MoneyField()
    base = MoneyField()
    surge_multiplier = serializers.CharField()
    waiting_bonus = MoneyField(
        help_text="Added for a ticket that waited past its target; part of pay."
    )
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    seen_at = serializers.DateTimeField(allow_null=True)
    window_seconds = serializers.IntegerField()
    decline_reason = serializers.ChoiceField(choices=DeclineReason.choices, allow_null=True)
    ticket = serializers.DictField()


class DeclineInput(serializers.Serializer):
    reason = serializers.ChoiceField(
        choices=DeclineReason.choices,
        required=False,
        allow_blank=True,
        help_text="not_my_area keeps you off this ticket for good; busy or other for the"
        " re-offer cool-down.",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=200)


def _answer(action, request, offer_id: int, **kwargs) -> Response:
    try:
        # The answer's pushes (the agent; the ticket's watchers; the next offer a
        # free agent pulls) leave together, after the commit: one send.
        with channel_send.batched():
            offer = action(offer_id=offer_id, user=request.user, **kwargs)
    except Offer.DoesNotExist as exc:
        # Another agent's offer is not acknowledged to exist.
        raise NotFound(_("No such offer.")) from exc
    # The offer as the service wrote it (its ticket read with it, or on first use).
    return Response(events.offer_payload(offer))


# An offer answered, expired or withdrawn takes no answer (`offer_<status>`, `offer_expired`).
OFFER_ENDED = error(
    "The offer was answered, has expired or was withdrawn (`offer_accepted`, `offer_declined`,"
    " `offer_expired`, `offer_withdrawn`)."
)


class OfferAcceptView(APIView):
    """Take the offered ticket at the pay shown.  409 once answered, expired or withdrawn."""

    permission_classes = [IsAgentUser]

    @extend_schema(
        request=None,
        responses={
            200: OfferOutput,
            409: error(
                "The offer was answered, has expired or was withdrawn, or the agent is at"
                " capacity (`agent_at_capacity`)."
            ),
        },
        tags=["offers"],
    )
    def post(self, request, offer_id: int):
        return _answer(dispatch.offer_accept, request, offer_id)


class OfferDeclineView(APIView):
    """Pass on the offer; it goes at once to the next best agent."""

    permission_classes = [IsAgentUser]

    @extend_schema(
        request=DeclineInput, responses={200: OfferOutput, 409: OFFER_ENDED}, tags=["offers"]
    )
    def post(self, request, offer_id: int):
        data = DeclineInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _answer(
            dispatch.offer_decline,
            request,
            offer_id,
            reason=data.validated_data.get("reason", ""),
            note=data.validated_data.get("note", ""),
        )


class OfferSeenView(APIView):
    """The console shows the offer: only offers seen and left to expire set an agent away."""

    permission_classes = [IsAgentUser]

    @extend_schema(request=None, responses={200: OfferOutput, 409: OFFER_ENDED}, tags=["offers"])
    def post(self, request, offer_id: int):
        return _answer(dispatch.offer_seen, request, offer_id)


class MyOffersView(APIView):
    """The agent's pending offers (what the socket's snapshot carries) and the last answered."""

    permission_classes = [IsAgentUser]

    @extend_schema(
        parameters=[OpenApiParameter("status", enum=OfferStatus.values, required=False)],
        responses={200: OfferOutput(many=True)},
        tags=["offers"],
        description="The agent's 50 latest offers, newest first (not paginated).",
    )
    def get(self, request):
        offers = Offer.objects.select_related("ticket").filter(agent__user=request.user)
        wanted = params.choice(request.query_params, "status", OfferStatus.values)
        if wanted:
            offers = offers.filter(status=wanted)
        return Response([events.offer_payload(offer) for offer in offers[:50]])


class SurgeOutput(serializers.Serializer):
    multiplier = serializers.CharField()
    waiting = serializers.IntegerField(help_text="Customers with a ticket waiting.")
    free_capacity = serializers.IntegerField()


# Pricing is for the people paid by it: anyone else is told there is nothing here.
NOT_FOR_CUSTOMERS = error("The caller is neither an agent nor staff (`not_found`).")


class SurgeView(APIView):
    """The surge multiplier in force now, for agents and staff."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={200: SurgeOutput, 404: NOT_FOR_CUSTOMERS},
        tags=["pricing"],
    )
    def get(self, request):
        user = request.user
        if not (user.is_operations or user.is_agent):
            raise NotFound()
        surge = pricing_services.surge_now()
        return Response(
            {
                "multiplier": f"{surge.multiplier:.2f}",
                "waiting": surge.waiting,
                "free_capacity": surge.free_capacity,
            }
        )


class RateInput(serializers.Serializer):
    category = serializers.CharField(max_length=40)
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField(max_length=3, required=False)


class RateOutput(serializers.Serializer):
    category = serializers.CharField(source="category_id")
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField()
    updated_at = serializers.DateTimeField()


class RateCardView(APIView):
    """The rate card: agents and staff read it, staff set a category's rate."""

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "GET" else [IsOperations()]

    @extend_schema(
        responses={200: RateOutput(many=True), 404: NOT_FOR_CUSTOMERS},
        tags=["pricing"],
    )
    def get(self, request):
        if not (request.user.is_operations or request.user.is_agent):
            raise NotFound()
        return Response(RateOutput(RateCard.objects.all(), many=True).data)

    @extend_schema(request=RateInput, responses={200: RateOutput}, tags=["pricing"])
    def post(self, request):
        data = RateInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = pricing_services.rate_card_set(
            actor=request.user,
            category=data.validated_data["category"],
            amount=data.validated_data["amount"],
            currency_code=data.validated_data.get("currency"),
        )
        return Response(RateOutput(row).data, status=status.HTTP_200_OK)
