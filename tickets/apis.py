"""HTTP API for tickets: open, read, converse, lifecycle, ratings, feedback, keys.

Views parse, check access (a ticket the caller may not see is a 404), call one
service and answer; domain errors become ``{"error": {...}}`` in ``config.api``.
"""

from dataclasses import asdict

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent
from config import channel_send, params
from config.api import KeysetPagination, PaginatedAPIView
from config.authentication import TokenAuthentication
from config.errors import Forbidden
from config.permissions import IsAgentUser, IsCustomerUser, IsOperations
from config.schema import error
from tickets import selectors, services
from tickets.authentication import ApiKeyAuthentication
from tickets.models import (
    FEEDBACK_AREA_MAX,
    IDEMPOTENCY_KEY_MAX,
    FeedbackKind,
    Rating,
    Ticket,
    TicketStatus,
)
from tickets.serializers import (
    FeedbackInput,
    FeedbackOutput,
    IdentityOutput,
    IntegrationKeyCreatedOutput,
    IntegrationKeyInput,
    IntegrationKeyOutput,
    LanguageInput,
    MessageInput,
    MessageOutput,
    QualityOutput,
    RatingInput,
    RatingOutput,
    ReasonInput,
    TicketOpenInput,
    TicketOutput,
)

# Integrations reach the ticket endpoints only.
TICKET_AUTHENTICATION = [SessionAuthentication, TokenAuthentication, ApiKeyAuthentication]


def _visible(request, ticket_id: int) -> Ticket:
    try:
        return selectors.ticket_for(caller=request.user, ticket_id=ticket_id)
    except Ticket.DoesNotExist as exc:
        raise Http404 from exc


def _fresh(request, ticket_id: int) -> Ticket:
    return (
        selectors.tickets_visible_to(caller=request.user).select_related("rating").get(pk=ticket_id)
    )


def _ticket_response(request, ticket_id: int, code=status.HTTP_200_OK, headers=None) -> Response:
    ticket = _fresh(request, ticket_id)
    return Response(TicketOutput(ticket).data, status=code, headers=headers)


def _as_now(ticket: Ticket) -> dict:
    """A ticket just opened, as it stands now, from the row in memory.

    Only its status can have moved since it was written (dispatch's fast path
    may have offered it already, right after the commit); a new ticket has no
    rating and no agent.  Its status and place are read rather than the ticket
    and its relations again.
    """
    ticket.status, place = selectors.ticket_standing(ticket=ticket)
    Ticket._meta.get_field("rating").set_cached_value(ticket, None)
    return TicketOutput(ticket, context={"places": {ticket.pk: place}}).data


def _new_ticket(data: dict) -> tuple[services.NewTicket, services.CustomerRef | None]:
    handoff = data.get("handoff")
    customer = data.get("customer")
    new = services.NewTicket(
        subject=data["subject"],
        body=data["body"],
        category=data.get("category") or "general",
        language=data.get("language"),
        priority=data["priority"],
        handoff=services.Handoff(
            transcript=[
                {**turn, "at": turn["at"].isoformat() if turn.get("at") else None}
                for turn in handoff.get("transcript", [])
            ],
            summary=handoff.get("summary", ""),
            intent=handoff.get("intent", ""),
        )
        if handoff is not None
        else None,
    )
    return new, services.CustomerRef(**customer) if customer else None


class TicketsView(PaginatedAPIView):
    """Customers and integrations open tickets; everyone lists the tickets they may see."""

    authentication_classes = TICKET_AUTHENTICATION
    permission_classes = [IsAuthenticated]
    # The newest first, a page at a time by keyset: as cheap with 100,000 tickets
    # as with ten (config.api.KeysetPagination).
    pagination_class = KeysetPagination

    @extend_schema(
        parameters=[OpenApiParameter("status", enum=TicketStatus.values, required=False)],
        responses={200: TicketOutput(many=True)},
        tags=["tickets"],
    )
    def get(self, request):
        queryset = selectors.tickets_visible_to(caller=request.user).select_related("rating")
        wanted = params.choice(request.query_params, "status", TicketStatus.values)
        if wanted:
            queryset = queryset.filter(status=wanted)
        return self.paginated(queryset, lambda page: TicketOutput(page, many=True).data)

    @extend_schema(
        request=TicketOpenInput,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                # Printable characters: no control character, a NUL least of all.
                {
                    "type": "string",
                    "maxLength": IDEMPOTENCY_KEY_MAX,
                    "pattern": "^[^\\x00-\\x1f\\x7f]*$",
                },
                location=OpenApiParameter.HEADER,
                required=False,
                description="Retries with the same key and body return the original "
                "ticket; a different body is a 422.  Keys expire after 24 hours.",
            ),
            OpenApiParameter(
                "Idempotent-Replayed",
                {"type": "string", "enum": ["true"]},
                location=OpenApiParameter.HEADER,
                response=[201],
                description="Present when the answer replays an earlier request's ticket.",
            ),
        ],
        responses={
            201: OpenApiResponse(
                TicketOutput,
                description="The ticket opened, or the one an earlier request with the same"
                " Idempotency-Key and body opened (then `Idempotent-Replayed: true`).",
            ),
            422: error(
                "This Idempotency-Key came with a different body before (`idempotency_key_reused`)."
            ),
            429: error(
                "The customer holds as many open tickets as allowed (`too_many_open_tickets`);"
                " nothing was written."
            ),
        },
        tags=["tickets"],
    )
    def post(self, request):
        data = TicketOpenInput(data=request.data)
        data.is_valid(raise_exception=True)
        new, customer = _new_ticket(data.validated_data)
        # The new ticket's pushes (its status; the offer the fast path makes) leave
        # together, after the commit: one send.
        with channel_send.batched():
            opened = services.ticket_open(
                caller=request.user,
                new=new,
                customer=customer,
                idempotency_key=request.headers.get("Idempotency-Key") or None,
            )
        if not opened.created:
            headers = {"Idempotent-Replayed": "true"}
            return _ticket_response(
                request, opened.ticket.pk, code=opened.status_code, headers=headers
            )
        return Response(_as_now(opened.ticket), status=opened.status_code)


class TicketDetailView(APIView):
    authentication_classes = TICKET_AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: TicketOutput}, tags=["tickets"])
    def get(self, request, ticket_id: int):
        _visible(request, ticket_id)
        return _ticket_response(request, ticket_id)


class TicketMessagesView(PaginatedAPIView):
    """The conversation; ``GET ?since=<message id | time>`` resyncs after a reconnect."""

    authentication_classes = TICKET_AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "since",
                str,
                required=False,
                description="Messages after this one: a message id, or an ISO 8601 time (UTC"
                " when it names no offset).",
            )
        ],
        responses={200: MessageOutput(many=True)},
        tags=["tickets"],
    )
    def get(self, request, ticket_id: int):
        ticket = _visible(request, ticket_id)
        messages = selectors.messages_since(
            ticket=ticket, since=params.id_or_moment(request.query_params, "since")
        )
        return self.paginated(messages, lambda page: MessageOutput(page, many=True).data)

    @extend_schema(
        request=MessageInput,
        responses={
            201: MessageOutput,
            409: error("The conversation is closed (`conversation_closed`)."),
        },
        tags=["tickets"],
    )
    def post(self, request, ticket_id: int):
        _visible(request, ticket_id)
        data = MessageInput(data=request.data)
        data.is_valid(raise_exception=True)
        message = services.message_post(
            ticket_id=ticket_id, caller=request.user, body=data.validated_data["body"]
        )
        return Response(MessageOutput(message).data, status=status.HTTP_201_CREATED)


def _transition_view(service, summary: str):
    class TransitionView(APIView):
        authentication_classes = TICKET_AUTHENTICATION
        permission_classes = [IsAuthenticated]

        @extend_schema(
            request=ReasonInput,
            responses={
                200: TicketOutput,
                409: error(
                    "The ticket's status does not allow this (`invalid_transition`), or the"
                    " reopen window has passed (`reopen_window_passed`)."
                ),
            },
            tags=["tickets"],
            summary=summary,
        )
        def post(self, request, ticket_id: int):
            data = ReasonInput(data=request.data)
            data.is_valid(raise_exception=True)
            try:
                ticket = service(
                    ticket_id=ticket_id,
                    caller=request.user,
                    reason=data.validated_data.get("reason", ""),
                )
            except (Forbidden, Ticket.DoesNotExist):
                _visible(request, ticket_id)  # a 404 for a ticket the caller may not see
                raise
            # The ticket as written, read with its lock: its status again only if it
            # waits, since dispatch may have offered it right after the commit.
            place = None
            if ticket.is_waiting:
                ticket.status, place = selectors.ticket_standing(ticket=ticket)
            return Response(TicketOutput(ticket, context={"places": {ticket.pk: place}}).data)

    TransitionView.__name__ = f"{service.__name__.title().replace('_', '')}View"
    return TransitionView


CancelView = _transition_view(services.ticket_cancel, "Cancel a waiting ticket (its customer)")
ResolveView = _transition_view(services.ticket_resolve, "Resolve (the assigned agent)")
ReopenView = _transition_view(
    services.ticket_reopen, "Reopen a resolved ticket within the reopen window (its customer)"
)


class LanguageView(APIView):
    """Continue in another language (its customer, while it waits in line); the ticket
    keeps its place in line."""

    authentication_classes = TICKET_AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=LanguageInput,
        responses={
            200: TicketOutput,
            409: error("The ticket is not waiting in line (`not_queued`)."),
        },
        tags=["tickets"],
    )
    def post(self, request, ticket_id: int):
        _visible(request, ticket_id)
        data = LanguageInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.ticket_language_change(
            ticket_id=ticket_id, caller=request.user, language=data.validated_data["language"]
        )
        return _ticket_response(request, ticket_id)


class RatingView(APIView):
    authentication_classes = TICKET_AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=RatingInput,
        responses={
            201: RatingOutput,
            409: error(
                "The ticket is not resolved (`not_resolved`), or was rated already"
                " (`already_rated`)."
            ),
        },
        tags=["tickets"],
    )
    def post(self, request, ticket_id: int):
        _visible(request, ticket_id)
        data = RatingInput(data=request.data)
        data.is_valid(raise_exception=True)
        rating: Rating = services.rating_submit(
            ticket_id=ticket_id, caller=request.user, **data.validated_data
        )
        return Response(
            {"ticket_id": ticket_id, "score": rating.score, "comment": rating.comment},
            status=status.HTTP_201_CREATED,
        )


class TicketFeedbackView(APIView):
    permission_classes = [IsAgentUser]

    @extend_schema(
        request=FeedbackInput,
        responses={
            201: FeedbackOutput,
            409: error("The ticket's status takes no feedback (`invalid_transition`)."),
        },
        tags=["tickets"],
    )
    def post(self, request, ticket_id: int):
        _visible(request, ticket_id)
        data = FeedbackInput(data=request.data)
        data.is_valid(raise_exception=True)
        feedback = services.feedback_tag(
            ticket_id=ticket_id, caller=request.user, **data.validated_data
        )
        return Response(FeedbackOutput(feedback).data, status=status.HTTP_201_CREATED)


class FeedbackListView(PaginatedAPIView):
    """Product feedback for staff, newest first, filtered by kind, area and time."""

    permission_classes = [IsOperations]

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", enum=FeedbackKind.values, required=False),
            OpenApiParameter(
                "area",
                {"type": "string", "pattern": params.SLUG_PATTERN, "maxLength": FEEDBACK_AREA_MAX},
                required=False,
                description="The product area, as agents tag it: a slug such as `card-payments`.",
            ),
            OpenApiParameter(
                "since",
                OpenApiTypes.DATETIME,
                required=False,
                description="ISO 8601 time; UTC when it names no offset.",
            ),
        ],
        responses={200: FeedbackOutput(many=True)},
        tags=["admin"],
    )
    def get(self, request):
        kind = params.choice(request.query_params, "kind", FeedbackKind.values)
        since = params.moment(request.query_params, "since")
        area = params.slug(request.query_params, "area", max_length=FEEDBACK_AREA_MAX)
        queryset = selectors.feedback_for_staff(kind=kind, area=area, since=since)
        return self.paginated(queryset, lambda page: FeedbackOutput(page, many=True).data)


class IntegrationKeysView(PaginatedAPIView):
    permission_classes = [IsOperations]

    @extend_schema(responses={200: IntegrationKeyOutput(many=True)}, tags=["admin"])
    def get(self, request):
        return self.paginated(
            selectors.integration_keys(), lambda page: IntegrationKeyOutput(page, many=True).data
        )

    @extend_schema(
        request=IntegrationKeyInput, responses={201: IntegrationKeyCreatedOutput}, tags=["admin"]
    )
    def post(self, request):
        data = IntegrationKeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        raw, key = services.integration_key_create(
            actor=request.user,
            integration_name=data.validated_data["integration"],
            name=data.validated_data.get("name", ""),
        )
        key.key = raw
        response = Response(IntegrationKeyCreatedOutput(key).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class IntegrationKeyRevokeView(APIView):
    permission_classes = [IsOperations]

    @extend_schema(
        request=None,
        responses={
            200: IntegrationKeyOutput,
            409: error("The key is revoked already (`already_revoked`)."),
        },
        tags=["admin"],
    )
    def post(self, request, key_id: int):
        if not selectors.integration_keys().filter(pk=key_id).exists():
            raise Http404
        key = services.integration_key_revoke(actor=request.user, key_id=key_id)
        return Response(IntegrationKeyOutput(key).data)


def _quality_body(agent: Agent) -> dict:
    return QualityOutput(
        {"agent_id": agent.pk, **asdict(selectors.agent_quality(agent=agent))}
    ).data


class MyQualityView(APIView):
    """The agent's own quality score."""

    permission_classes = [IsAgentUser]

    @extend_schema(responses={200: QualityOutput}, tags=["agents"])
    def get(self, request):
        return Response(_quality_body(request.user.agent))


class AgentQualityView(APIView):
    permission_classes = [IsOperations]

    @extend_schema(responses={200: QualityOutput}, tags=["admin"])
    def get(self, request, agent_id: int):
        agent = Agent.objects.filter(pk=agent_id).first()
        if agent is None:
            raise Http404
        return Response(_quality_body(agent))


class MyIdentitiesView(PaginatedAPIView):
    """What integrations know of the signed-in customer: identities linked to
    the account and, once the address is verified, those claiming it."""

    permission_classes = [IsCustomerUser]

    @extend_schema(responses={200: IdentityOutput(many=True)}, tags=["customers"])
    def get(self, request):
        return self.paginated(
            selectors.customer_identities(user=request.user),
            lambda page: IdentityOutput(page, many=True).data,
        )


class IdentityLinkView(APIView):
    """Link an integration's identity, and its conversations, to this account."""

    permission_classes = [IsCustomerUser]

    @extend_schema(request=None, responses={200: IdentityOutput}, tags=["customers"])
    def post(self, request, identity_id: int):
        services.customer_link(caller=request.user, link_id=identity_id)
        identity = selectors.customer_identities(user=request.user).get(pk=identity_id)
        return Response(IdentityOutput(identity).data)
