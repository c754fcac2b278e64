"""An oversized upload is refused as it streams in, before its bytes are stored."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler

from agents.models import AgentDocument
from tests.agents.test_onboarding import PNG

pytestmark = pytest.mark.django_db

LIMIT = 200 * 1024


class Keeper(MemoryFileUploadHandler):
    """The handler that would store the file: counts the bytes that reach it."""

    received = 0

    def receive_data_chunk(self, raw_data, start):
        Keeper.received += len(raw_data)
        return super().receive_data_chunk(raw_data, start)


@pytest.fixture(autouse=True)
def _small_limit_and_a_keeper(settings):
    settings.HUMANLINE = {**settings.HUMANLINE, "DOCUMENT_MAX_BYTES": LIMIT}
    settings.FILE_UPLOAD_HANDLERS = ["config.uploads.SizeLimit", f"{__name__}.Keeper"]
    Keeper.received = 0


def _post(api, user, size: int):
    content = PNG + b"\x00" * (size - len(PNG))
    return api.as_(user).post(
        "/api/v1/agents/me/documents/",
        {"file": SimpleUploadedFile("id.png", content, content_type="image/png")},
        format="multipart",
    )


def test_a_body_declared_far_larger_is_refused_before_any_byte_is_kept(api, applicant):
    response = _post(api, applicant.user, 10 * LIMIT)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_too_large"
    assert Keeper.received == 0
    assert not AgentDocument.objects.exists()


def test_a_file_just_over_the_limit_is_stopped_at_the_limit(api, applicant):
    response = _post(api, applicant.user, LIMIT + 1)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_too_large"
    assert Keeper.received <= LIMIT
    assert not AgentDocument.objects.exists()


def test_a_file_within_the_limit_is_kept(api, applicant):
    response = _post(api, applicant.user, LIMIT)

    assert response.status_code == 201
    assert Keeper.received == LIMIT


def test_the_status_page_says_the_file_is_too_large(client, applicant):
    client.force_login(applicant.user)
    content = PNG + b"\x00" * (10 * LIMIT)

    response = client.post(
        "/apply/status/", {"file": SimpleUploadedFile("id.png", content, "image/png")}
    )

    assert "larger than" in response.content.decode()
    assert Keeper.received == 0
    assert not AgentDocument.objects.exists()
