"""The onboarding pages: apply, the applicant's status, the staff review page."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agents.models import Agent, AgentStatus
from tests.agents.test_onboarding import PNG

pytestmark = pytest.mark.django_db


def apply_form(**overrides):
    data = {
        "name": "Rui Rocha",
        "email": "rui@example.org",
        "password": "a-long-secret-phrase",
        "cohort": "student",
        "languages": "pt, en",
        "skills": ["general", "account"],
        "country": "PT",
        "time_zone": "Europe/Lisbon",
        "capacity": "2",
        "motivation": "",
    }
    data.update(overrides)
    return data


def test_the_apply_form_creates_an_application_and_signs_in(client):
    response = client.post("/apply/", apply_form())
    assert response.status_code == 302
    assert response["Location"] == "/apply/status/"
    agent = Agent.objects.get(user__email="rui@example.org")
    assert agent.language_codes == ["en", "pt"]
    status_page = client.get("/apply/status/")
    assert b"Upload an identity document" in status_page.content


def test_the_apply_form_shows_field_errors_and_stores_nothing(client):
    response = client.post("/apply/", apply_form(languages="pt, klingon", password="123"))
    assert response.status_code == 400
    content = response.content.decode()
    assert "Not ISO 639-1 language codes" in content
    assert "password" in content.lower()
    assert not Agent.objects.exists()


def test_uploading_on_the_status_page_moves_to_review(client, applicant):
    client.force_login(applicant.user)
    response = client.post(
        "/apply/status/", {"file": SimpleUploadedFile("id.png", PNG, content_type="image/png")}
    )
    assert response.status_code == 302
    applicant.refresh_from_db()
    assert applicant.status == AgentStatus.IN_REVIEW


def test_a_disguised_upload_on_the_status_page_shows_the_error(client, applicant):
    client.force_login(applicant.user)
    response = client.post(
        "/apply/status/",
        {"file": SimpleUploadedFile("id.pdf", b"hello", content_type="application/pdf")},
    )
    assert response.status_code == 400
    assert "PDF, JPEG or PNG" in response.content.decode()


def test_the_review_page_is_for_staff_only(client, customer, agent, staff):
    client.force_login(customer)
    assert client.get("/staff/review/").status_code == 302
    client.force_login(agent.user)
    assert client.get("/staff/review/").status_code == 302
    client.force_login(staff)
    assert client.get("/staff/review/").status_code == 200


def test_staff_decide_from_the_review_page(client, staff):
    from tests.factories import AgentFactory

    pending = AgentFactory(status=AgentStatus.IN_REVIEW, user__name="Pia Pending")
    client.force_login(staff)
    page = client.get("/staff/review/?status=in_review")
    assert "Pia Pending" in page.content.decode()

    client.post(f"/staff/review/{pending.pk}/reject/", {"reason": ""})
    pending.refresh_from_db()
    assert pending.status == AgentStatus.IN_REVIEW

    client.post(f"/staff/review/{pending.pk}/approve/", {})
    pending.refresh_from_db()
    assert pending.status == AgentStatus.APPROVED


def test_the_review_page_has_an_empty_state(client, staff):
    client.force_login(staff)
    assert "No applications" in client.get("/staff/review/?status=suspended").content.decode()


def test_the_django_admin_changes_status_only_through_services(client, staff):
    from tests.factories import AgentFactory

    staff.is_superuser = True
    staff.save()
    pending = AgentFactory(status=AgentStatus.IN_REVIEW)
    client.force_login(staff)
    client.post(
        "/django-admin/agents/agent/",
        {"action": "agent_approve", "_selected_action": [pending.pk]},
    )
    pending.refresh_from_db()
    assert pending.status == AgentStatus.APPROVED
    assert pending.review_events.last().actor == staff


@pytest.mark.parametrize(
    "elsewhere", ["https://evil.example/", "//evil.example/", "http:evil.example", "\\\\evil"]
)
def test_a_decision_never_redirects_off_site(client, staff, elsewhere):
    from tests.factories import AgentFactory

    pending = AgentFactory(status=AgentStatus.IN_REVIEW)
    client.force_login(staff)

    response = client.post(f"/staff/review/{pending.pk}/approve/", {"next": elsewhere})

    assert response.status_code == 302
    assert response["Location"] == "/staff/review/"


def test_a_decision_goes_back_to_the_page_it_came_from(client, staff):
    from tests.factories import AgentFactory

    pending = AgentFactory(status=AgentStatus.IN_REVIEW)
    client.force_login(staff)

    response = client.post(
        f"/staff/review/{pending.pk}/approve/", {"next": "/staff/review/?status=in_review"}
    )

    assert response["Location"] == "/staff/review/?status=in_review"


def test_the_apply_page_is_throttled_per_address(client):
    # Each application creates an account: one address may not script thousands.
    codes = [client.post("/apply/", apply_form(email="")).status_code for _ in range(31)]

    assert set(codes[:30]) == {400}
    assert codes[30] == 429
    refused = client.post("/apply/", apply_form())
    assert "Please try again in" in refused.content.decode()
    assert int(refused["Retry-After"]) > 0
    assert not Agent.objects.exists()
