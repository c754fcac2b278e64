"""HTTP API for people: token sign-in, sign-up, applications, documents, review."""

from django.contrib.auth.signals import user_logged_in
from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import presence, selectors, services
from agents.models import AgentStatus
from agents.serializers import (
    AgentReviewOutput,
    ApplicantOutput,
    ApplicationInput,
    ApplicationOutput,
    CustomerSignUpInput,
    DecisionInput,
    DocumentInput,
    DocumentOutput,
    PresenceInput,
    PresenceOutput,
    RealtimeTicketOutput,
    SkillInput,
    SkillOutput,
    TokenInput,
    TokenOutput,
    UserOutput,
    VerificationInput,
)
from agents.validators import ALLOWED_DOCUMENT_TYPES
from config import authentication, params, uploads
from config.api import PaginatedAPIView, error_body
from config.permissions import IsAgentUser, IsCustomerUser, IsOperations
from config.schema import error
from config.throttles import ScopedRate


class TokenView(APIView):
    """Exchange an e-mail address and password for an API token."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRate]
    throttle_scope = "sign_in"

    @extend_schema(
        request=TokenInput,
        responses={
            200: TokenOutput,
            400: error(
                "An input is missing (`invalid`), or no account has this e-mail address and"
                " password (`invalid_credentials`)."
            ),
            429: error(
                "Too many sign-ins from this client (`throttled`), or too many failed ones for"
                " this account or address (`sign_in_locked`); `Retry-After` says how many"
                " seconds to wait."
            ),
        },
        tags=["auth"],
    )
    def post(self, request):
        from django.contrib.auth import authenticate

        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request,
            username=data.validated_data["username"].strip(),
            password=data.validated_data["password"],
        )
        if user is None and getattr(request, "axes_locked_out", False):
            # django-axes refused it: the account or this address failed too often.
            response = Response(
                error_body("sign_in_locked", authentication.lockout_message()),
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
            response["Retry-After"] = str(authentication.lockout_seconds())
            return response
        if user is None:
            return Response(
                error_body("invalid_credentials", "Unknown e-mail address or wrong password."),
                status=status.HTTP_400_BAD_REQUEST,
            )
        token, _ = Token.objects.get_or_create(user=user)
        # Issuing a token is a sign-in: the account's failed attempts are cleared
        # (django-axes listens) and its last sign-in is recorded.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        return Response({"token": token.key})


def verification_link(request):
    """How a request names the page that verifies an address: absolute, on its host."""
    return lambda token: request.build_absolute_uri(reverse("verify-email", args=[token]))


class CustomerSignUpView(APIView):
    """Create a customer account; a link to verify the address is mailed to it."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedRate]
    throttle_scope = "sign_up"

    @extend_schema(request=CustomerSignUpInput, responses={201: UserOutput}, tags=["customers"])
    def post(self, request):
        data = CustomerSignUpInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.customer_sign_up(**data.validated_data, link=verification_link(request))
        return Response(UserOutput(user).data, status=status.HTTP_201_CREATED)


class VerifyEmailView(APIView):
    """Verify a customer's address with the token from the mailed link."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=VerificationInput, responses={200: UserOutput}, tags=["customers"])
    def post(self, request):
        data = VerificationInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.email_verify(token=data.validated_data["token"])
        return Response(UserOutput(user).data)


class MyVerificationView(APIView):
    """Mail the signed-in customer a new verification link."""

    permission_classes = [IsCustomerUser]
    throttle_classes = [ScopedRate]
    throttle_scope = "verification"

    @extend_schema(request=None, responses={202: None}, tags=["customers"])
    def post(self, request):
        services.email_verification_send(user=request.user, link=verification_link(request))
        return Response(status=status.HTTP_202_ACCEPTED)


class ApplicationView(APIView):
    """Apply to become an agent.  The answer carries a token for the next steps."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedRate]
    throttle_scope = "sign_up"

    @extend_schema(request=ApplicationInput, responses={201: ApplicationOutput}, tags=["agents"])
    def post(self, request):
        data = ApplicationInput(data=request.data)
        data.is_valid(raise_exception=True)
        agent = services.agent_apply(application=services.Application(**data.validated_data))
        agent.token = Token.objects.create(user=agent.user).key
        return Response(ApplicationOutput(agent).data, status=status.HTTP_201_CREATED)


class MyApplicationView(APIView):
    """The applicant's own application and its status."""

    permission_classes = [IsAgentUser]

    @extend_schema(responses={200: ApplicantOutput}, tags=["agents"])
    def get(self, request):
        agent = selectors.agent_for_user(user=request.user)
        return Response(ApplicantOutput(agent).data)


class MyDocumentsView(APIView):
    permission_classes = [IsAgentUser]
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [ScopedRate]
    throttle_scope = "upload"

    @extend_schema(
        request={"multipart/form-data": DocumentInput},
        responses={
            201: DocumentOutput,
            409: error("The application's status takes no more documents."),
        },
        tags=["agents"],
    )
    def post(self, request):
        request.data  # noqa: B018 (parsed first: the size limit may stop the upload)
        if (refused := uploads.refusal(request)) is not None:
            raise refused
        data = DocumentInput(data=request.data)
        data.is_valid(raise_exception=True)
        agent = selectors.agent_for_user(user=request.user)
        document = services.agent_document_upload(agent=agent, upload=data.validated_data["file"])
        return Response(DocumentOutput(document).data, status=status.HTTP_201_CREATED)


class ReviewQueueView(PaginatedAPIView):
    permission_classes = [IsOperations]

    @extend_schema(
        parameters=[OpenApiParameter("status", enum=AgentStatus.values, required=False)],
        responses={200: AgentReviewOutput(many=True)},
        tags=["admin"],
    )
    def get(self, request):
        wanted = params.choice(request.query_params, "status", AgentStatus.values)
        return self.paginated(
            selectors.agent_review_queue(status=wanted),
            lambda page: AgentReviewOutput(page, many=True).data,
        )


class ReviewDetailView(APIView):
    permission_classes = [IsOperations]

    @extend_schema(responses={200: AgentReviewOutput}, tags=["admin"])
    def get(self, request, agent_id: int):
        agent = get_object_or_404(selectors.agent_review_queue(), pk=agent_id)
        return Response(AgentReviewOutput(agent).data)


def _decision_view(action, summary: str):
    class DecisionView(APIView):
        permission_classes = [IsOperations]

        @extend_schema(
            request=DecisionInput,
            responses={
                200: AgentReviewOutput,
                409: error("The agent's status does not allow this decision."),
            },
            tags=["admin"],
            summary=summary,
        )
        def post(self, request, agent_id: int):
            get_object_or_404(selectors.agent_review_queue(), pk=agent_id)
            data = DecisionInput(data=request.data)
            data.is_valid(raise_exception=True)
            action(
                actor=request.user, agent_id=agent_id, reason=data.validated_data.get("reason", "")
            )
            agent = selectors.agent_review_queue().get(pk=agent_id)
            return Response(AgentReviewOutput(agent).data)

    DecisionView.__name__ = f"{action.__name__.title().replace('_', '')}View"
    return DecisionView


ApproveView = _decision_view(services.agent_approve, "Approve an application in review")
RejectView = _decision_view(services.agent_reject, "Reject an application (reason required)")
SuspendView = _decision_view(services.agent_suspend, "Suspend an approved agent (reason required)")
ReinstateView = _decision_view(services.agent_reinstate, "Reinstate a suspended agent")


# What an identity document can be: the upload's content is judged on the way in.
DOCUMENT_MEDIA_TYPES = tuple(ALLOWED_DOCUMENT_TYPES)


class DocumentDownloadView(APIView):
    """Staff read an identity document; there is no other way to reach the file."""

    permission_classes = [IsOperations]

    @extend_schema(
        responses={(200, media_type): bytes for media_type in DOCUMENT_MEDIA_TYPES},
        tags=["admin"],
    )
    def get(self, request, document_id):
        try:
            document = selectors.document_for_staff(document_id=document_id)
        except Exception as exc:
            raise Http404 from exc
        return document_response(document)


def document_response(document) -> FileResponse:
    extension = document.storage_name.rsplit(".", 1)[-1]
    response = FileResponse(
        services.agent_document_open(document=document),
        content_type=document.content_type,
        as_attachment=False,
        filename=f"identity-document-{document.agent_id}.{extension}",
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    return response


class SkillsView(APIView):
    """The skills catalog: anyone may read it, staff add to it."""

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsOperations()]

    @extend_schema(responses={200: SkillOutput(many=True)}, tags=["skills"])
    def get(self, request):
        return Response(SkillOutput(selectors.skill_catalog(), many=True).data)

    @extend_schema(request=SkillInput, responses={201: SkillOutput}, tags=["admin"])
    def post(self, request):
        data = SkillInput(data=request.data)
        data.is_valid(raise_exception=True)
        skill = services.skill_create(**data.validated_data)
        return Response(SkillOutput(skill).data, status=status.HTTP_201_CREATED)


class RealtimeTicketView(APIView):
    """A one-time ticket for a WebSocket connect: ``/ws/...?ticket=<ticket>``."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={201: RealtimeTicketOutput}, tags=["realtime"])
    def post(self, request):
        value, ticket = services.realtime_ticket_issue(user=request.user)
        return Response(
            {"ticket": value, "expires_at": ticket.expires_at}, status=status.HTTP_201_CREATED
        )


class MyPresenceView(APIView):
    """The agent's presence: ``online`` (receives offers), ``away`` or ``offline``."""

    permission_classes = [IsAgentUser]

    @extend_schema(responses={200: PresenceOutput}, tags=["presence"])
    def get(self, request):
        agent = selectors.agent_for_user(user=request.user)
        return Response(PresenceOutput(agent).data)

    @extend_schema(request=PresenceInput, responses={200: PresenceOutput}, tags=["presence"])
    def post(self, request):
        data = PresenceInput(data=request.data)
        data.is_valid(raise_exception=True)
        agent = presence.agent_presence_set(
            agent_id=request.user.agent.pk, status=data.validated_data["status"]
        )
        return Response(PresenceOutput(agent).data)
