"""Delivery to CleverTap's ``/1/upload``: client, retry policy, checkpoint, orchestration.

>>> from clevertap_mapper.upload import upload_url
>>> upload_url("sg1")
'https://sg1.api.clevertap.com/1/upload'

Library use (what ``ctmap upload`` does)::

    from clevertap_mapper import MapperConfig
    from clevertap_mapper.upload import Credentials, Secret, run_upload
    report = run_upload(["events.ndjson"], MapperConfig(),
                        Credentials("ACCOUNT-ID", Secret(passcode)), region="in1",
                        state_path="sync.state", rejects_path="rejects.ndjson")
    report.outcome   # "complete", "gave_up", "interrupted" or "failed"
"""

from clevertap_mapper.upload.client import (
    REGIONS,
    Ack,
    CleverTapClient,
    Credentials,
    RequestRejectedError,
    TransientError,
    Unprocessed,
    upload_url,
)
from clevertap_mapper.upload.plan import Body, plan_bodies
from clevertap_mapper.upload.retry import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    MAX_CONCURRENCY,
    AdaptiveLimiter,
    RetryPolicy,
)
from clevertap_mapper.upload.secret import Secret
from clevertap_mapper.upload.state import Checkpoint, RejectsJournal
from clevertap_mapper.upload.uploader import (
    Uploader,
    UploadOptions,
    UploadReport,
    job_settings,
    run_upload,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "MAX_CONCURRENCY",
    "REGIONS",
    "Ack",
    "AdaptiveLimiter",
    "Body",
    "Checkpoint",
    "CleverTapClient",
    "Credentials",
    "RejectsJournal",
    "RequestRejectedError",
    "RetryPolicy",
    "Secret",
    "TransientError",
    "Unprocessed",
    "UploadOptions",
    "UploadReport",
    "Uploader",
    "job_settings",
    "plan_bodies",
    "run_upload",
    "upload_url",
]
