"""Settings: file + environment precedence, defaults, and the errors a user sees for bad values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from connector.settings import AUTH_MODES, validate_environment_url
from core.errors import ConfigError
from jobs.service.settings import Settings
from jobs.service.settings_load import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def msal_config(extra: str = "", url: str = "https://contoso.crm4.dynamics.com") -> str:
    return (
        f'[dataverse]\nurl = "{url}"\n\n[auth]\nmode = "client_secret"\n'
        f'tenant_id = "{TENANT}"\nclient_id = "{CLIENT}"\n{extra}'
    )


def error_of(tmp_path: Path | None, text: str | None, env: dict[str, str] | None = None) -> ConfigError:
    path = write(tmp_path, text) if text is not None and tmp_path is not None else None
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env or {})
    message = str(info.value)
    # Never a pydantic dump.
    assert "validation error" not in message
    assert "For further information" not in message
    assert "pydantic" not in message.lower()
    return info.value


# --- loading and precedence --------------------------------------------------------------------------


def test_no_config_at_all_gives_sandbox_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.dataverse.url is None
    assert settings.auth.mode == "token"
    assert settings.dataverse.api_version == "v9.2"
    assert settings.sync.page_size == 5000
    assert settings.writeback.batch_size == 1000
    assert settings.jobs.enabled == ["scoring", "duplicates", "rfm", "clv"]
    assert set(settings.schedule.sets) == {"frequent", "nightly"}
    # Without a file, relative defaults are relative to the working directory.
    assert settings.mirror.path == tmp_path / ".dvsync" / "mirror.sqlite"
    assert settings.mappings.dir == tmp_path / "mappings"
    with pytest.raises(ConfigError, match=r"DVSYNC__DATAVERSE__URL"):
        settings.dataverse.require_url()


def test_sandbox_from_environment_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {
        "DVSYNC__DATAVERSE__URL": "http://127.0.0.1:54321/",
        "DVSYNC__AUTH__MODE": "token",
        "DVSYNC__AUTH__TOKEN": "t0k",
    }
    settings = load_settings(env=env)
    assert settings.dataverse.url == "http://127.0.0.1:54321"
    assert settings.auth.token.get_secret_value() == "t0k"


def test_environment_wins_over_file(tmp_path):
    path = write(tmp_path, msal_config("[sync]\npage_size = 100\n"))
    settings = load_settings(
        path,
        env={
            "DVSYNC__SYNC__PAGE_SIZE": "250",
            "DVSYNC__DATAVERSE__URL": "https://fabrikam.crm.dynamics.com",
            "dvsync__logging__level": "debug",  # names are case-insensitive, as on Windows
        },
    )
    assert settings.sync.page_size == 250
    assert settings.dataverse.url == "https://fabrikam.crm.dynamics.com"
    assert settings.logging.level == "DEBUG"
    assert settings.auth.tenant_id == TENANT  # from the file


def test_config_path_from_dvsync_config_and_from_working_directory(tmp_path, monkeypatch):
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    path = write(elsewhere, "[sync]\npage_size = 42\n", "dvsync.toml")
    assert load_settings(env={"DVSYNC_CONFIG": str(path)}).sync.page_size == 42
    work = tmp_path / "work"
    work.mkdir()
    write(work, "[sync]\npage_size = 7\n")
    monkeypatch.chdir(work)
    assert load_settings(env={}).sync.page_size == 7
    # An explicit path wins over both.
    assert load_settings(path, env={"DVSYNC_CONFIG": "/nonexistent.toml"}).sync.page_size == 42


def test_missing_config_file_named_explicitly_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml", env={})


def test_relative_paths_follow_the_file_and_the_working_directory(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    path = write(project, '[mirror]\npath = "state/mirror.sqlite"\n')
    monkeypatch.chdir(tmp_path)
    settings = load_settings(path, env={"DVSYNC__MAPPINGS__DIR": "my-mappings"})
    assert settings.mirror.path == project / "state" / "mirror.sqlite"
    assert settings.mappings.dir == tmp_path / "my-mappings"


def test_lists_from_environment_as_json_or_commas(tmp_path):
    settings = load_settings(
        env={"DVSYNC__JOBS__ENABLED": "rfm, clv", "DVSYNC__SYNC__TABLES": '["lead", "Contact"]'}
    )
    assert settings.jobs.enabled == ["rfm", "clv"]
    assert settings.sync.tables == ["lead", "contact"]


def test_schedule_sets_from_file_and_environment(tmp_path):
    path = write(
        tmp_path,
        '[schedule]\ntimezone = "Europe/Berlin"\n'
        '[schedule.sets.hourly]\ncron = "0 * * * *"\njobs = ["scoring"]\n',
    )
    settings = load_settings(path, env={"DVSYNC__SCHEDULE__SETS__HOURLY__CRON": "15 * * * *"})
    assert settings.schedule.timezone == "Europe/Berlin"
    assert list(settings.schedule.sets) == ["hourly"]
    assert settings.schedule.sets["hourly"].cron == "15 * * * *"
    assert settings.schedule.sets["hourly"].jobs == ["scoring"]


def test_secrets_are_secretstr_and_never_shown(tmp_path):
    path = write(tmp_path, msal_config())
    settings = load_settings(
        path,
        env={
            "DVSYNC__AUTH__CLIENT_SECRET": "s3cr3t-VALUE",
            "DVSYNC__AUTH__CERTIFICATE_PASSPHRASE": "pass-PHRASE",
        },
    )
    assert isinstance(settings.auth.client_secret, SecretStr)
    assert settings.auth.client_secret.get_secret_value() == "s3cr3t-VALUE"
    for text in (repr(settings), str(settings), repr(settings.auth), str(settings.model_dump())):
        assert "s3cr3t-VALUE" not in text
        assert "pass-PHRASE" not in text
    assert "s3cr3t-VALUE" not in settings.model_dump_json()


def test_secret_of_wrong_type_is_reported_without_its_value(tmp_path):
    err = error_of(tmp_path, msal_config("client_secret = 987654321\n"))
    assert err.key == "auth.client_secret"
    assert "987654321" not in str(err)


def test_logging_json_key_and_level_spelling(tmp_path):
    path = write(tmp_path, '[logging]\nlevel = "warn"\njson = true\n')
    settings = load_settings(path, env={})
    assert settings.logging.level == "WARNING"
    assert settings.logging.json is True


def test_thumbprint_is_normalised():
    settings = Settings(
        auth={"certificate_thumbprint": "a1:b2:c3:d4:e5:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:01:12:23:34"}
    )
    assert settings.auth.certificate_thumbprint == "A1B2C3D4E5F60718293A4B5C6D7E8F9001122334"


# --- the example file ---------------------------------------------------------------------------


def test_example_config_loads():
    settings = load_settings(EXAMPLE, env={})
    assert settings.auth.mode == "client_secret"
    assert settings.dataverse.url == "https://contoso.crm4.dynamics.com"
    assert settings.writeback.dry_run is True  # the default: nothing is written until chosen
    assert settings.schedule.sets["nightly"].jobs == ["rfm", "clv"]


def _sections(text: str) -> dict[str, str]:
    """Split the example into its [section] blocks (sub-tables go with their section)."""
    blocks: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        header = re.match(r"^\[([A-Za-z_]+)", line)
        if header:
            current = header.group(1)
        blocks[current] = blocks.get(current, "") + line + "\n"
    return blocks


def test_example_config_documents_every_setting():
    blocks = _sections(EXAMPLE.read_text(encoding="utf-8"))
    missing = []
    for section, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        block = blocks.get(section, "")
        for key in model.model_fields:
            if key == "sets":
                if not re.search(r"^\[schedule\.sets\.\w+\]", block, re.M):
                    missing.append("schedule.sets")
                continue
            # A nested table ([engine.spark]) is documented by its own header.
            if re.search(rf"^\[{section}\.{key}\]", block, re.M):
                continue
            # The key, set or commented out, with a comment line above it.
            if not re.search(rf"^#?\s*{key}\s*=", block, re.M):
                missing.append(f"{section}.{key}")
    assert missing == []
    for key in ("cron", "jobs"):
        assert re.search(rf"^{key}\s*=", blocks["schedule"], re.M)


def test_configuration_guide_has_a_row_for_every_setting():
    # docs/configuration.md is the reference a consultant reads; a key added to Settings without a
    # row there (sync.window_overlap_seconds was) is undocumented.
    guide = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [
        f"{section}.{key}"
        for section, field in Settings.model_fields.items()
        for key in field.annotation.model_fields
        if not re.search(rf"^\| `{key}(\.<name>\.\w+)?` \|", guide, re.M)
    ]
    assert missing == []


# --- errors -----------------------------------------------------------------------------------------


def test_misspelt_key_in_file_says_did_you_mean_with_line(tmp_path):
    err = error_of(tmp_path, msal_config('tennant_id = "x"\n'))
    assert err.key == "auth.tennant_id"
    assert err.line == 8
    assert "did you mean `tenant_id`?" in str(err)
    assert "config.toml:8" in str(err)


def test_misspelt_section_and_nested_key(tmp_path):
    err = error_of(tmp_path, '[dataverce]\nurl = "https://x.crm.dynamics.com"\n')
    assert "did you mean `dataverse`?" in str(err)
    err = error_of(tmp_path, '[schedule.sets.nightly]\ncron = "0 2 * * *"\njbos = ["rfm"]\n')
    assert err.key == "schedule.sets.nightly.jbos"
    assert "did you mean `jobs`?" in str(err)


def test_misspelt_environment_variable(tmp_path):
    err = error_of(None, None, {"DVSYNC__AUTH__CLIENT_SECRT": "x"})
    assert "DVSYNC__AUTH__CLIENT_SECRT" in str(err)
    assert "did you mean DVSYNC__AUTH__CLIENT_SECRET?" in str(err)
    assert "x" not in str(err).split("?")[-1]


def test_unknown_auth_mode_lists_the_valid_ones(tmp_path):
    err = error_of(None, None, {"DVSYNC__AUTH__MODE": "devicecode"})
    text = str(err)
    assert text.startswith("environment variable DVSYNC__AUTH__MODE [auth.mode]")
    assert "did you mean `device_code`?" in text
    for mode in AUTH_MODES:
        assert mode in text
    err = error_of(tmp_path, '[auth]\nmode = "password"\n')
    assert err.line == 2 and "valid modes" in str(err)


@pytest.mark.parametrize("missing", ["tenant_id", "client_id"])
def test_msal_modes_need_tenant_and_client(tmp_path, missing):
    text = msal_config().replace(f"{missing} = ", f"# {missing} = ")
    err = error_of(tmp_path, text)
    assert err.key == f"auth.{missing}"
    assert "config.toml" in str(err)
    assert "set " + missing in str(err)


def test_msal_mode_needs_the_environment_url(tmp_path):
    err = error_of(
        None,
        None,
        {
            "DVSYNC__AUTH__MODE": "device_code",
            "DVSYNC__AUTH__TENANT_ID": TENANT,
            "DVSYNC__AUTH__CLIENT_ID": CLIENT,
        },
    )
    assert err.key == "dataverse.url"


def test_credential_without_mode_is_caught(tmp_path):
    err = error_of(None, None, {"DVSYNC__AUTH__CLIENT_SECRET": "abc", "DVSYNC__AUTH__TENANT_ID": TENANT})
    assert err.key == "auth.mode"
    assert 'mode = "client_secret"' in str(err)
    assert "abc" not in str(err)


def test_bad_tenant_and_client_ids(tmp_path):
    err = error_of(tmp_path, msal_config().replace(TENANT, "common"))
    assert err.key == "auth.tenant_id" and err.line == 6
    err = error_of(tmp_path, msal_config().replace(CLIENT, "my-app"))
    assert err.key == "auth.client_id" and "Application (client) ID" in str(err)
    # A verified domain is a valid tenant.
    assert load_settings(write(tmp_path, msal_config().replace(TENANT, "contoso.onmicrosoft.com")), env={})


def test_all_problems_are_reported_first_one_first(tmp_path):
    err = error_of(tmp_path, '[dataverse]\nurl = "http://contoso.crm.dynamics.com"\ntimeout_read = "soon"\n')
    assert err.line == 2
    assert "plain http" in str(err)
    assert "also:" in str(err) and "timeout_read" in str(err) and "'soon'" in str(err)


@pytest.mark.parametrize(
    "key",
    [
        "DVSYNC__DATAVERSE__TIMEOUT_READ",
        "DVSYNC__DATAVERSE__TIMEOUT_CONNECT",
        "DVSYNC__HTTP__RETRY_BUDGET_SECONDS",
    ],
)
@pytest.mark.parametrize("value", ["inf", "nan"])
def test_timeouts_and_the_retry_budget_must_be_finite(key, value):
    # An infinite read timeout is no timeout at all: a hung connection would block a sync forever.
    err = error_of(None, None, env={key: value})
    assert key in str(err) and "finite" in str(err)


def test_cron_and_jobs_and_limits_are_checked(tmp_path):
    err = error_of(tmp_path, '[schedule.sets.nightly]\ncron = "0 2 * *"\n')
    assert err.key == "schedule.sets.nightly.cron" and "five-field" in str(err)
    # Valid fields, impossible day: a configuration error (exit 2), not a traceback in `status`.
    err = error_of(tmp_path, '[schedule.sets.nightly]\ncron = "0 0 30 2 *"\n')
    assert err.key == "schedule.sets.nightly.cron" and err.line == 2 and "never runs" in str(err)
    assert err.exit_code == 2
    err = error_of(tmp_path, '[jobs]\nenabled = ["rfm", "clvv"]\n')
    assert "did you mean `clv`?" in str(err)
    err = error_of(tmp_path, "[writeback]\nbatch_size = 5000\n")
    assert err.key == "writeback.batch_size" and "1000" in str(err)
    err = error_of(tmp_path, "[sync]\npage_size = 0\n")
    assert err.key == "sync.page_size"
    err = error_of(tmp_path, '[schedule]\ntimezone = "Mars/Olympus"\n')
    assert "IANA" in str(err)


def test_not_valid_toml_names_the_line(tmp_path):
    err = error_of(tmp_path, '[auth]\nmode = "token\n')
    assert err.line == 2


def test_certificate_file_missing_or_not_a_file(tmp_path):
    base = msal_config().replace('"client_secret"', '"certificate"')
    err = error_of(tmp_path, base + 'certificate_path = "missing.pem"\n')
    assert err.key == "auth.certificate_path" and "does not exist" in str(err)
    assert str(tmp_path / "missing.pem") in str(err)
    err = error_of(tmp_path, base + f'certificate_path = "{tmp_path}"\n')
    assert "is not a file" in str(err)
    err = error_of(tmp_path, base)
    assert err.key == "auth.certificate_path" and "needs the certificate file" in str(err)


def test_certificate_file_unreadable(tmp_path, monkeypatch):
    cert = tmp_path / "key.pem"
    cert.write_text("x")
    real_open = Path.open

    def refuse(self, *args, **kwargs):
        # chmod 000 does not stop root, so simulate what a non-root user gets.
        if self == cert:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    base = msal_config().replace('"client_secret"', '"certificate"')
    err = error_of(tmp_path, base + 'certificate_path = "key.pem"\n')
    assert "cannot be read (Permission denied)" in str(err)
    assert "permissions" in str(err)


# --- the environment URL ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normalised", "authority_host"),
    [
        (
            "https://contoso.crm.dynamics.com/",
            "https://contoso.crm.dynamics.com",
            "login.microsoftonline.com",
        ),
        (
            "https://Contoso.CRM4.dynamics.com",
            "https://contoso.crm4.dynamics.com",
            "login.microsoftonline.com",
        ),
        (
            "https://contoso.api.crm11.dynamics.com",
            "https://contoso.api.crm11.dynamics.com",
            "login.microsoftonline.com",
        ),
        ("https://agency.crm9.dynamics.com", "https://agency.crm9.dynamics.com", "login.microsoftonline.com"),
        (
            "https://agency.crm.microsoftdynamics.us",
            "https://agency.crm.microsoftdynamics.us",
            "login.microsoftonline.us",
        ),
        (
            "https://agency.crm.appsplatform.us",
            "https://agency.crm.appsplatform.us",
            "login.microsoftonline.us",
        ),
        (
            "https://contoso.crm.dynamics.cn",
            "https://contoso.crm.dynamics.cn",
            "login.partner.microsoftonline.cn",
        ),
        ("https://crm.contoso.com", "https://crm.contoso.com", "login.microsoftonline.com"),
        (
            "https://dataverse-proxy.internal:8443",
            "https://dataverse-proxy.internal:8443",
            "login.microsoftonline.com",
        ),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080", "login.microsoftonline.com"),
        ("http://localhost:8080/", "http://localhost:8080", "login.microsoftonline.com"),
        ("http://[::1]:8080", "http://[::1]:8080", "login.microsoftonline.com"),
    ],
)
def test_valid_environment_urls(url, normalised, authority_host):
    settings = load_settings(env={"DVSYNC__DATAVERSE__URL": url, "DVSYNC__AUTH__TOKEN": "t"})
    assert settings.dataverse.url == normalised
    assert settings.auth.authority_host == authority_host


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://contoso.crm.dynamics.com", "plain http"),
        ("http://10.0.0.5:8080", "plain http"),
        ("contoso.crm.dynamics.com", "not a URL"),
        ("ftp://contoso.crm.dynamics.com", "https"),
        ("https://contoso.crm.dynamics.com/api/data/v9.2/", "Web API address"),
        ("https://contoso.crm.dynamics.com/main.aspx?appid=1", "path, query or fragment"),
        ("https://crm4.dynamics.com", "no environment name"),
        ("https://contoso.crm.dynamic.com", "did you mean `contoso.crm.dynamic"),
        ("https://contoso.operations.dynamics.com", "Finance & Operations"),
        ("https://contoso.dynamics.com", "not a Dataverse environment host"),
    ],
)
def test_invalid_environment_urls(url, says):
    err = error_of(None, None, {"DVSYNC__DATAVERSE__URL": url})
    assert err.key == "dataverse.url"
    assert isinstance(err, SettingsError) and err.env_var == "DVSYNC__DATAVERSE__URL"
    assert says in str(err)


def test_url_with_password_is_not_echoed():
    err = error_of(None, None, {"DVSYNC__DATAVERSE__URL": "https://admin:hunter2@contoso.crm.dynamics.com"})
    assert "hunter2" not in str(err)
    assert "user name or password" in str(err)


def test_validate_environment_url_directly():
    assert (
        validate_environment_url(" https://contoso.crm.dynamics.com:443/ ")
        == "https://contoso.crm.dynamics.com:443"
    )


def test_authority_host_override_and_config_error_exit_code(tmp_path):
    path = write(tmp_path, msal_config('authority_host = "https://login.microsoftonline.us/"\n'))
    settings = load_settings(path, env={})
    assert settings.auth.authority == f"https://login.microsoftonline.us/{TENANT}"
    err = error_of(tmp_path, msal_config('authority_host = "http://login.example"\n'))
    assert err.exit_code == 2


def test_whole_section_as_json_variable_and_bad_json_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"DVSYNC__AUTH": '{"mode": "token", "token": "abc"}'})
    assert settings.auth.token.get_secret_value() == "abc"
    err = error_of(None, None, {"DVSYNC__AUTH": "{mode: token}"})
    assert err.env_var == "DVSYNC__AUTH"
    assert "not valid JSON" in str(err)


def test_settings_constructed_directly_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("DVSYNC__SYNC__PAGE_SIZE", "123")
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", "from-env")
    settings = Settings(dataverse={"url": "http://127.0.0.1:9"})
    assert settings.sync.page_size == 123
    assert settings.auth.token.get_secret_value() == "from-env"
    assert settings.dataverse.url == "http://127.0.0.1:9"


def test_key_under_the_wrong_header_says_where_it_belongs(tmp_path):
    err = error_of(tmp_path, 'url = "https://contoso.crm.dynamics.com"\n')
    assert err.line == 1
    assert "`url` belongs under [dataverse]" in str(err)
    err = error_of(
        tmp_path, f'[dataverse]\nurl = "https://contoso.crm.dynamics.com"\ntenant_id = "{TENANT}"\n'
    )
    assert err.line == 3 and "`tenant_id` belongs under [auth]" in str(err)


def test_environment_adjusts_a_default_schedule_set_without_losing_its_jobs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"DVSYNC__SCHEDULE__SETS__NIGHTLY__CRON": "30 3 * * *"})
    assert settings.schedule.sets["nightly"].cron == "30 3 * * *"
    assert settings.schedule.sets["nightly"].jobs == ["rfm", "clv"]
    assert settings.schedule.sets["frequent"].cron == "*/30 * * * *"
    path = write(tmp_path, '[schedule]\ntimezone = "UTC"\n')
    assert set(load_settings(path, env={}).schedule.sets) == {"frequent", "nightly"}
