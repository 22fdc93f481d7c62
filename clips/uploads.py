"""An upload handler that refuses an oversized clip before its bytes go anywhere."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile


class ClipSizeLimitHandler(FileUploadHandler):
    """Skip any uploaded file larger than CLIP_MAX_UPLOAD_BYTES and remember its name.

    It stands first in the handler chain, so the bytes of an oversized file are dropped as they
    arrive instead of being written to a temporary file; the other files of the same request
    go through. ``request.oversized_uploads`` lists the names that were skipped.
    """

    def __init__(self, request=None):
        super().__init__(request)
        self.limit = self.max_bytes()
        self.received = 0
        request.oversized_uploads = []

    def max_bytes(self) -> int:
        return settings.CLIP_MAX_UPLOAD_BYTES

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self.request.oversized_uploads.append(self.file_name)
            raise SkipFile()
        return raw_data

    def file_complete(self, file_size):
        return None


class SourceSizeLimitHandler(ClipSizeLimitHandler):
    """The same for raw source videos, which may be much larger than clips."""

    def max_bytes(self) -> int:
        from .pipeline import source_max_upload_bytes

        return source_max_upload_bytes()
