"""The root of every error dvsync raises on purpose, and the configuration error every layer shares.

dvsync's exceptions live with the layer that raises them, all under :class:`DvsyncError`, so a
caller catches one type::

    DvsyncError                      core.errors: base of everything dvsync raises on purpose
    ├── ConfigError                  core.errors: fix your settings or mapping files (exit code 2)
    │   ├── SettingsError            jobs.service.settings_load: a bad setting (file line or variable)
    │   └── MappingErrors            jobs.service.mapping: every problem in the mapping files at once
    ├── AuthError                    connector.errors: fix the app registration, secret or tenant
    ├── DataverseError               connector.errors: the Web API answered (or failed to answer)
    │   ├── RetriableError           try again later (ThrottledError, ServiceUnavailableError, ...)
    │   ├── FatalApiError            the request itself is wrong or not allowed
    │   └── RecordError              one record failed; skip it, report it, retry next run
    ├── JobError                     jobs.errors: an analytics job cannot produce a trustworthy result
    │   ├── JobInputError            an argument the job cannot use (also a ValueError)
    │   ├── InsufficientDataError    too little history for the model asked for
    │   └── ConvergenceError         a fit did not converge; nothing from it is written back
    └── MirrorError                  jobs.service.errors: the local mirror cannot be used as it is

Every message is written for the person who has to act on it: what was wrong and how to fix it,
and never a token, secret or Authorization header.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ConfigError", "DvsyncError"]


class DvsyncError(Exception):
    """Base of every error dvsync raises on purpose; the CLI shows its text without a traceback."""

    exit_code: int = 1


class ConfigError(DvsyncError):
    """A setting or a mapping file is wrong: the message names where and how to fix it.

    Args:
        message: what is wrong, in one sentence.
        file: the file the problem is in, when there is one.
        line: the 1-based line in that file, when known.
        key: the dotted key (``auth.tenant_id``, ``fields.email``).
        hint: how to fix it ("did you mean `emailaddress1`?").
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.key = key
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        if self.key:
            where = f"{where} [{self.key}]" if where else f"[{self.key}]"
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return text
