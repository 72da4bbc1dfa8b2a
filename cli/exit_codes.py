"""ctmap's exit codes: one documented enum (shared/DESIGN.md section 4)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a ctmap process's exit status means."""

    OK = 0  # everything done, nothing rejected
    ERROR = 1  # configuration, credentials, unreadable input, unwritable output, unexpected
    USAGE = 2  # bad command line
    REJECTED = 3  # finished, but some events or records were rejected (see the rejects file)
    GAVE_UP = 4  # upload gave up after retries; state saved, a rerun resumes
    INTERRUPTED = 130  # Ctrl-C or SIGTERM; state saved

    @classmethod
    def help_text(cls) -> str:
        return ("Exit codes: 0 all done; 1 error; 2 usage; 3 finished with rejections; "
                "4 upload gave up (rerun resumes); 130 interrupted.")
