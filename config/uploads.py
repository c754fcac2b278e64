"""Uploads larger than any file the platform accepts are refused as they stream in.

Identity documents are the only uploads (``DOCUMENT_MAX_BYTES``, 10 MB).  The
size the service checks is that of a file already received and stored in a
temporary file; this handler, first in ``FILE_UPLOAD_HANDLERS`` (Django's
documented extension point), stops reading the body as soon as the request
says, or the bytes show, that it is larger, so nothing more is stored.  The
views then answer ``file_too_large`` (``refusal``).
"""

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
