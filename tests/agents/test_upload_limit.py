"""An oversized upload is refused as it streams in, before its bytes are stored."""

import asyncio
import itertools
import json

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


# Under the ASGI server the body arrives in chunks, and both ways of running Django
# keep all of it before the upload handlers above see a byte: config.uploads.BodyLimit
# stops it first.  These go through the deployed application (config.asgi).

CHUNK = 64 * 1024


async def _upload_over_asgi(user, chunks, *, declared: int | str | None = None):
    """A document upload sent chunk by chunk; returns (status, body, bytes the app pulled)."""
    from asgiref.sync import sync_to_async
    from rest_framework.authtoken.models import Token

    from config.asgi import application

    token = await sync_to_async(lambda: Token.objects.get_or_create(user=user)[0].key)()
    boundary = b"b0undary"
    head = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="id.png"'
        b"\r\nContent-Type: image/png\r\n\r\n"
    )
    tail = b"\r\n--" + boundary + b"--\r\n"
    if declared == "exact":  # the length of the whole body, as a client that knows it sends
        declared = len(head) + sum(len(chunk) for chunk in chunks) + len(tail)
    parts = itertools.chain([head], chunks, [tail])
    pulled = 0
    sent = []

    async def receive():
        nonlocal pulled
        part = next(parts, None)
        if part is None:
            await asyncio.sleep(3600)  # the client stays connected
        pulled += len(part)
        return {"type": "http.request", "body": part, "more_body": part is not tail}

    async def send(message):
        sent.append(message)

    headers = [
        (b"host", b"testserver"),
        (b"authorization", f"Token {token}".encode()),
        (b"content-type", b"multipart/form-data; boundary=" + boundary),
    ]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    scope = post_scope("/api/v1/agents/me/documents/", headers, client="192.0.2.10")
    await asyncio.wait_for(application(scope, receive, send), timeout=30)
    start, *bodies = sent
    return start["status"], b"".join(m.get("body", b"") for m in bodies), pulled


def _far_too_long():
    """Ten times the largest body, chunk by chunk: a client may send any amount."""
    yield PNG
    for _ in range(10 * LIMIT // CHUNK):
        yield b"\x00" * CHUNK


@pytest.fixture
def small_bodies(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * LIMIT  # a JSON body may be larger
    from config.uploads import ENVELOPE_BYTES

    return LIMIT + ENVELOPE_BYTES  # the largest upload the application reads


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_body_declared_larger_than_any_request_is_a_413_before_a_byte_is_read(
    applicant, small_bodies
):
    status, body, pulled = await _upload_over_asgi(
        applicant.user, _far_too_long(), declared=10 * small_bodies
    )

    assert status == 413
    assert json.loads(body)["error"]["code"] == "body_too_large"
    assert pulled == 0
    assert Keeper.received == 0


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_long_body_is_stopped_at_the_limit_and_nothing_is_stored(applicant, small_bodies):
    # No declared length (chunked): before, the handler kept every byte sent.
    status, body, pulled = await _upload_over_asgi(applicant.user, _far_too_long())

    assert status == 413
    assert json.loads(body)["error"]["code"] == "body_too_large"
    assert pulled <= small_bodies + CHUNK
    assert Keeper.received == 0
    assert not await AgentDocument.objects.aexists()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_document_within_the_limit_still_arrives_over_asgi(applicant, small_bodies):
    content = PNG + b"\x00" * (LIMIT - len(PNG))
    chunks = [content[i : i + CHUNK] for i in range(0, len(content), CHUNK)]

    status, body, _ = await _upload_over_asgi(applicant.user, chunks, declared="exact")

    assert status == 201, body
    assert await AgentDocument.objects.aexists()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_json_body_declared_past_the_data_limit_is_a_413_before_a_byte_is_read(
    customer, settings
):
    from config.asgi import application

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = LIMIT
    pulled = 0
    sent = []

    async def receive():
        nonlocal pulled
        pulled += CHUNK
        return {"type": "http.request", "body": b" " * CHUNK, "more_body": pulled < 10 * LIMIT}

    async def send(message):
        sent.append(message)

    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"content-length", str(10 * LIMIT).encode()),
    ]
    scope = post_scope("/api/v1/tickets/", headers, client="192.0.2.11")
    await asyncio.wait_for(application(scope, receive, send), timeout=30)

    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "body_too_large"
    assert pulled == 0


def post_scope(path: str, headers: list, *, client: str) -> dict:
    """An ASGI HTTP scope for a POST to ``path``, as a server hands it to the app."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": (client, 50000),
        "server": ("testserver", 80),
    }
