"""Uploads and request bodies larger than the platform accepts are refused as they stream in.

Two stops, one after the other:

- ``BodyLimit``, around the HTTP application under the ASGI server
  (``config.asgi``): the server hands the body over in chunks, and both ways of
  running Django (``config.asgi_http`` and Django's own ASGI handler) keep all
  of it, spilling to a temporary file, before Django sees a byte.  A body
  larger than any request of its type Humanline accepts (``largest_body``: an
  upload's document and envelope, or a JSON or form body) is answered 413
  ``body_too_large`` as soon as its declared length, or the bytes received so
  far, show it: nothing past that is read or kept.
- ``SizeLimit``, first in ``FILE_UPLOAD_HANDLERS`` (Django's documented
  extension point): identity documents are the only uploads
  (``DOCUMENT_MAX_BYTES``, 10 MB), and it stops the multipart parser as soon as
  the request says, or the bytes show, that a file is larger, so no more of it
  is stored.  The views then answer ``file_too_large`` (``refusal``).
"""

import json

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from config.errors import InvalidInput

# What a multipart body adds around one file: boundaries and part headers.
ENVELOPE_BYTES = 64 * 1024


class SizeLimit(FileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.limit = settings.HUMANLINE["DOCUMENT_MAX_BYTES"]
        self.declared = content_length or 0

    def receive_data_chunk(self, raw_data, start):
        # The declared length is known before any byte of the file is kept.
        if self.declared > self.limit + ENVELOPE_BYTES or start + len(raw_data) > self.limit:
            if self.request is not None:
                self.request.upload_too_large = True
            raise StopUpload(connection_reset=True)
        return raw_data  # on to the handlers that store it

    def file_complete(self, file_size):
        return None  # the next handler returns the file


def refusal(request) -> InvalidInput | None:
    """The error for an upload this handler stopped, or None."""
    if not getattr(request, "upload_too_large", False):
        return None
    megabytes = settings.HUMANLINE["DOCUMENT_MAX_BYTES"] // (1024 * 1024)
    message = f"The file is larger than {megabytes} MB."
    return InvalidInput(message, code="file_too_large", fields={"file": [message]})


def largest_body(content_type: bytes) -> int:
    """The largest request body any view accepts of this type: a multipart body
    carries an identity document (the only uploads) and its envelope; any other
    is a JSON or form body (``DATA_UPLOAD_MAX_MEMORY_SIZE``)."""
    if content_type.lower().startswith(b"multipart/"):
        return settings.HUMANLINE["DOCUMENT_MAX_BYTES"] + ENVELOPE_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE + ENVELOPE_BYTES


class BodyLimit:
    """An ASGI wrapper for HTTP: a body over ``largest_body`` is a 413, read no further.

    The application behind it reads the body through ``receive`` as usual; once
    the declared length or the bytes so far pass the limit, it is told the
    client left (``http.disconnect``: both handlers then run nothing and answer
    nothing), and the 413 is sent from here.
    """

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.application(scope, receive, send)
        limit = largest_body(_header(scope, b"content-type") or b"")
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            return await _too_large(scope, send, limit)
        received = 0
        over = False

        async def limited_receive():
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        await self.application(scope, limited_receive, send)
        if over:
            await _too_large(scope, send, limit)


def _header(scope, wanted: bytes) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == wanted:
            return value
    return None


def _declared_length(scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # the server refuses a malformed length before this


async def _too_large(scope, send, limit: int) -> None:
    message = f"The request body is larger than {_size(limit)}."
    if scope["path"].startswith("/api/"):
        body = json.dumps(
            {"error": {"code": "body_too_large", "message": message, "fields": {}}}
        ).encode()
        content_type = b"application/json"
    else:
        body, content_type = message.encode(), b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count // (1024 * 1024)} MB"
    return f"{count // 1024} KB"
