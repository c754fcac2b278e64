"""Agents apply, upload an identity document, and staff review them."""

import threading

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from agents.models import Agent, AgentDocument, AgentReviewEvent, AgentStatus, User
from tests.factories import AgentFactory, StaffFactory

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\n" + b"0" * 64


def application(**overrides):
    body = {
        "email": "lena@example.org",
        "password": "a-long-secret-phrase",
        "name": "Lena Lima",
        "cohort": "rural",
        "languages": ["pt", "EN"],
        "skills": ["general", "refunds"],
        "country": "pt",
        "time_zone": "Europe/Lisbon",
        "motivation": "I know the product inside out.",
    }
    body.update(overrides)
    return body


def upload(api, user, name="id.png", content=PNG, content_type="image/png"):
    return api.as_(user).post(
        "/api/v1/agents/me/documents/",
        {"file": SimpleUploadedFile(name, content, content_type=content_type)},
        format="multipart",
    )


# --- applying ----------------------------------------------------------------


def test_applying_creates_an_applied_agent_with_languages_and_skills(api):
    response = api.post("/api/v1/agents/applications/", application())

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "applied"
    assert body["languages"] == ["en", "pt"]
    assert body["skills"] == ["general", "refunds"]
    assert body["capacity"] == 2
    assert body["country"] == "PT"
    assert body["token"]
    agent = Agent.objects.get(user__email="lena@example.org")
    assert agent.user.role == "agent"
    assert list(agent.review_events.values_list("to_status", flat=True)) == ["applied"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"languages": ["en", "zz"]}, "languages"),
        ({"languages": ["english"]}, "languages"),
        ({"languages": []}, "languages"),
        ({"skills": ["general", "astrology"]}, "skills"),
        ({"password": "password"}, "password"),
        ({"password": "lena@example.org"}, "password"),
        ({"cohort": "retired"}, "cohort"),
        ({"country": "XX"}, "country"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"capacity": 0}, "capacity"),
        ({"capacity": 99}, "capacity"),
        ({"email": "not an email"}, "email"),
        ({"motivation": "x" * 1001}, "motivation"),
    ],
)
def test_bad_application_is_a_400_naming_the_field_and_stores_nothing(api, overrides, field):
    response = api.post("/api/v1/agents/applications/", application(**overrides))

    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error["fields"], error
    assert error["message"]
    assert not User.objects.filter(email="lena@example.org").exists()
    assert not Agent.objects.exists()


def test_applying_with_a_taken_email_is_a_400(api, customer):
    response = api.post("/api/v1/agents/applications/", application(email="CARLA@example.org"))

    assert response.status_code == 400
    assert "email" in response.json()["error"]["fields"]
    assert Agent.objects.count() == 0


def test_an_inactive_skill_cannot_be_declared(api):
    from agents.models import Skill

    Skill.objects.filter(slug="refunds").update(is_active=False)
    response = api.post("/api/v1/agents/applications/", application())
    assert response.status_code == 400
    assert "refunds" in response.json()["error"]["fields"]["skills"][0]


def test_applicants_see_their_own_application_without_staff_identities(api, applicant, staff):
    from agents.services import agent_reject

    agent_reject(actor=staff, agent_id=applicant.pk, reason="Incomplete profile")
    response = api.as_(applicant.user).get("/api/v1/agents/me/")

    assert response.status_code == 200
    body = response.json()
    assert body["email"] == applicant.user.email
    assert body["status"] == "rejected"
    assert body["events"][-1]["reason"] == "Incomplete profile"
    assert staff.email not in str(body)


def test_customers_and_strangers_cannot_read_an_application(api, customer):
    assert api.as_(customer).get("/api/v1/agents/me/").status_code == 403
    assert api.as_(None).get("/api/v1/agents/me/").status_code in (401, 403)


# --- documents ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "mime"),
    [
        ("id.png", PNG, "image/png"),
        ("id.jpg", JPEG, "image/jpeg"),
        ("id.pdf", PDF, "application/pdf"),
    ],
)
def test_first_document_moves_the_application_into_review(api, applicant, name, content, mime):
    response = upload(api, applicant.user, name=name, content=content)

    assert response.status_code == 201, response.json()
    assert response.json()["content_type"] == mime
    applicant.refresh_from_db()
    assert applicant.status == AgentStatus.IN_REVIEW
    event = applicant.review_events.last()
    assert (event.from_status, event.to_status, event.actor) == (
        "applied",
        "in_review",
        applicant.user,
    )


def test_document_type_is_judged_by_content_not_by_name(api, applicant):
    response = upload(
        api, applicant.user, name="passport.pdf", content=PNG, content_type="application/pdf"
    )

    assert response.status_code == 201
    assert response.json()["content_type"] == "image/png"
    document = AgentDocument.objects.get()
    assert document.storage_name.endswith(".png")
    assert "passport" not in document.storage_name


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("id.pdf", b"just some text pretending to be a pdf"),
        ("id.png", b"MZ\x90\x00" + b"\x00" * 100),  # a Windows executable
        ("id.png", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
        ("id.gif", b"GIF89a" + b"\x00" * 64),
    ],
)
def test_disguised_files_are_refused_and_nothing_is_stored(api, applicant, settings, name, content):
    response = upload(api, applicant.user, name=name, content=content)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_file_type"
    assert "file" in response.json()["error"]["fields"]
    assert not AgentDocument.objects.exists()
    stored = settings.PRIVATE_MEDIA_ROOT / "documents"
    assert not stored.exists() or not any(stored.iterdir())
    applicant.refresh_from_db()
    assert applicant.status == AgentStatus.APPLIED


def test_oversized_files_are_refused(api, applicant, settings):
    big = PNG + b"\x00" * (10 * 1024 * 1024)
    response = upload(api, applicant.user, content=big)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_too_large"
    assert not AgentDocument.objects.exists()


def test_a_missing_file_is_a_400(api, applicant):
    response = api.as_(applicant.user).post("/api/v1/agents/me/documents/", {}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]


def test_documents_are_stored_privately_under_a_random_name(api, applicant, settings):
    upload(api, applicant.user, name="my-passport.png")
    document = AgentDocument.objects.get()
    path = settings.PRIVATE_MEDIA_ROOT / "documents" / document.storage_name
    assert path.read_bytes() == PNG
    assert not str(path).startswith(str(settings.MEDIA_ROOT))
    assert not str(path).startswith(str(settings.STATIC_ROOT))


def test_a_second_document_keeps_the_application_in_review(api, applicant):
    upload(api, applicant.user)
    response = upload(api, applicant.user, name="back.jpg", content=JPEG)
    assert response.status_code == 201
    applicant.refresh_from_db()
    assert applicant.status == AgentStatus.IN_REVIEW
    assert applicant.review_events.filter(to_status="in_review").count() == 1


def test_an_applicant_cannot_pile_up_documents(api, applicant, settings):
    # Each may be 10 MB: without a cap one applicant fills the disk.
    codes = [upload(api, applicant.user).status_code for _ in range(6)]

    assert codes == [201] * 5 + [400]
    assert AgentDocument.objects.filter(agent=applicant).count() == 5
    stored = list((settings.PRIVATE_MEDIA_ROOT / "documents").iterdir())
    assert len(stored) == 5  # the refused file was not left behind


def test_uploads_are_throttled(api, applicant, settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "DOCUMENT_MAX_COUNT": 100}
    codes = [upload(api, applicant.user).status_code for _ in range(21)]

    assert codes[:20] == [201] * 20
    assert codes[20] == 429


def test_documents_cannot_be_added_once_decided(api, agent):
    response = upload(api, agent.user)
    assert response.status_code == 409
    assert not AgentDocument.objects.exists()


def test_only_staff_can_read_a_document(api, client, applicant, other_agent, customer, staff):
    upload(api, applicant.user)
    document = AgentDocument.objects.get()
    url = f"/api/v1/admin/documents/{document.pk}/"

    assert api.as_(applicant.user).get(url).status_code == 403
    assert api.as_(other_agent.user).get(url).status_code == 403
    assert api.as_(customer).get(url).status_code == 403

    response = api.as_(staff).get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert "no-store" in response["Cache-Control"]

    client.force_login(customer)
    assert client.get(f"/staff/documents/{document.pk}/").status_code == 302
    client.force_login(staff)
    page = client.get(f"/staff/documents/{document.pk}/")
    assert page.status_code == 200


def test_documents_have_no_public_url(client, api, applicant):
    upload(api, applicant.user)
    document = AgentDocument.objects.get()
    for url in (
        f"/media/{document.storage_name}",
        f"/static/{document.storage_name}",
        f"/private/documents/{document.storage_name}",
    ):
        assert client.get(url).status_code == 404


# --- review ------------------------------------------------------------------


@pytest.fixture
def in_review(api, applicant):
    upload(api, applicant.user)
    applicant.refresh_from_db()
    return applicant


def decide(api, user, agent, decision, reason=None):
    body = {} if reason is None else {"reason": reason}
    return api.as_(user).post(f"/api/v1/admin/agents/{agent.pk}/{decision}/", body)


def test_staff_see_the_review_queue_filtered_by_status(api, staff, in_review, agent):
    response = api.as_(staff).get("/api/v1/admin/agents/?status=in_review")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    row = body["results"][0]
    assert row["email"] == in_review.user.email
    assert row["documents"][0]["content_type"] == "image/png"
    everyone = api.as_(staff).get("/api/v1/admin/agents/").json()
    assert everyone["count"] == 2


def test_the_review_queue_refuses_an_unknown_status(api, staff):
    response = api.as_(staff).get("/api/v1/admin/agents/?status=maybe")
    assert response.status_code == 400
    assert "status" in response.json()["error"]["fields"]


def test_only_staff_reach_the_review_api(api, in_review, agent, customer):
    for user in (in_review.user, agent.user, customer):
        assert api.as_(user).get("/api/v1/admin/agents/").status_code == 403
        assert decide(api, user, in_review, "approve").status_code == 403
    in_review.refresh_from_db()
    assert in_review.status == AgentStatus.IN_REVIEW


def test_approving_records_the_decision_and_emails_the_agent(
    api, staff, in_review, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = decide(api, staff, in_review, "approve", "Documents check out")

    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    event = AgentReviewEvent.objects.filter(agent=in_review).last()
    assert (event.actor, event.from_status, event.to_status, event.reason) == (
        staff,
        "in_review",
        "approved",
        "Documents check out",
    )
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [in_review.user.email]
    assert "approved" in mail.outbox[0].subject


def test_rejecting_needs_a_reason(api, staff, in_review):
    response = decide(api, staff, in_review, "reject", "  ")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "reason_required"
    assert "reason" in response.json()["error"]["fields"]
    in_review.refresh_from_db()
    assert in_review.status == AgentStatus.IN_REVIEW


def test_rejection_email_carries_the_reason(
    api, staff, in_review, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        decide(api, staff, in_review, "reject", "Document unreadable")
    assert "Document unreadable" in mail.outbox[0].body


def test_suspending_and_reinstating_an_approved_agent(api, staff, agent):
    assert decide(api, staff, agent, "suspend").status_code == 400
    assert (
        decide(api, staff, agent, "suspend", "Rude to a customer").json()["status"] == "suspended"
    )
    assert decide(api, staff, agent, "reinstate", "Appeal upheld").json()["status"] == "approved"
    transitions = list(agent.review_events.values_list("from_status", "to_status", "reason"))
    assert transitions[-2:] == [
        ("approved", "suspended", "Rude to a customer"),
        ("suspended", "approved", "Appeal upheld"),
    ]


@pytest.mark.parametrize(
    ("status", "decision"),
    [
        ("applied", "approve"),
        ("approved", "approve"),
        ("rejected", "approve"),
        ("rejected", "reject"),
        ("in_review", "suspend"),
        ("applied", "suspend"),
        ("approved", "reject"),
        ("approved", "reinstate"),
        ("in_review", "reinstate"),
        ("suspended", "approve"),
    ],
)
def test_decisions_the_status_does_not_allow_are_409(api, staff, status, decision):
    agent = AgentFactory(status=status)
    response = decide(api, staff, agent, decision, "Because")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    agent.refresh_from_db()
    assert agent.status == status
    assert not agent.review_events.exists()


def test_deciding_on_an_unknown_agent_is_404(api, staff):
    assert decide(api, staff, Agent(pk=999_999), "approve").status_code == 404


def test_suspension_runs_the_registered_hooks_in_its_transaction(staff, agent):
    from agents import services

    seen = []
    services.SUSPENSION_HOOKS.append(lambda agent, actor: seen.append((agent.status, actor)))
    try:
        services.agent_suspend(actor=staff, agent_id=agent.pk, reason="Fraud check")
    finally:
        services.SUSPENSION_HOOKS.pop()
    assert seen == [("suspended", staff)]


@pytest.mark.django_db(transaction=True)
def test_two_staff_deciding_at_once_make_one_decision_and_one_409():
    from agents import services
    from config.errors import InvalidTransition

    first, second = StaffFactory(), StaffFactory()
    agent = AgentFactory(status=AgentStatus.IN_REVIEW)
    barrier = threading.Barrier(2)
    outcomes = []

    def act(service, actor):
        barrier.wait()
        try:
            service(actor=actor, agent_id=agent.pk, reason="Decided")
            outcomes.append("ok")
        except InvalidTransition:
            outcomes.append("409")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=act, args=(services.agent_approve, first)),
        threading.Thread(target=act, args=(services.agent_reject, second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["409", "ok"]
    agent.refresh_from_db()
    decisions = AgentReviewEvent.objects.filter(agent=agent)
    assert decisions.count() == 1
    assert decisions.get().to_status == agent.status
