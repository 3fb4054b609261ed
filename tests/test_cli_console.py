"""Reports piped to a file or a log keep their table cells whole instead of rich's 80-column cut."""

import io

from jobs.cli import common as cli_common


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def _status_table(out) -> None:
    columns = ["run", "started", "finished", "outcome", "read", "written", "failed", "retries", "throttled"]
    values = [1, "2026-11-23T14:46:45+00:00", "2026-11-23T14:46:52+00:00", "ok", 39404, 3215, 0, 0, 0]
    cli_common.render_table("Last runs", [dict(zip(columns, values, strict=True))], columns, out)


def test_piped_output_is_wide_enough_for_a_status_table(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    pipe = _Pipe()
    monkeypatch.setattr("sys.stdout", pipe)
    _status_table(cli_common.console())
    text = pipe.getvalue()
    assert "2026-11-23T14:46:45+00:00" in text
    assert "…" not in text


def test_columns_in_the_environment_still_wins(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setattr("sys.stdout", _Pipe())
    assert cli_common.console().width == 60
