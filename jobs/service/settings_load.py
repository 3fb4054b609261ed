"""Loading the settings: config.toml and the environment into one :class:`Settings`.

Every mistake becomes one :class:`SettingsError` naming the file line or the variable, and the fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_settings import SettingsError as PydanticSettingsError

__all__ = ["SettingsError", "load_settings"]

from connector.settings import ENV_PREFIX, env_var_name
from core.errors import ConfigError
from core.tomlfile import TomlFile, closest, load_toml
from jobs.service.settings import CONFIG_ENV_VAR, Settings
from jobs.service.settings_sources import LOAD_CONTEXT, LoadContext


class SettingsError(ConfigError):
    """A ConfigError for settings, which can also point at an environment variable.

    Attributes:
        env_var: the variable the bad value came from, when it came from the environment.
        also: further problems found in the same load, shown after the first one.
    """

    def __init__(self, message: str, *, env_var: str | None = None, **kwargs: Any) -> None:
        self.env_var = env_var
        self.also: list[SettingsError] = []
        super().__init__(message, **kwargs)

    def _render(self) -> str:
        text = super()._render()
        if self.env_var:
            text = f"environment variable {self.env_var} {text}"
        for other in self.also:
            text += f"\n  also: {other}"
        return text


def _model_for(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _dict_model(annotation: Any) -> type[BaseModel] | None:
    origin = getattr(annotation, "__origin__", None)
    if origin is dict:
        args = getattr(annotation, "__args__", ())
        return _model_for(args[1]) if len(args) == 2 else None
    return None


def _unknown_keys(
    model: type[BaseModel], data: Any, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple, list]]:
    """Yield (path, suggestions) for every key in ``data`` that ``model`` has no field for."""
    if not isinstance(data, dict):
        return
    fields = model.model_fields
    for key, value in data.items():
        here = (*path, str(key))
        if key not in fields:
            yield here, closest(str(key), fields)
            continue
        annotation = fields[key].annotation
        sub = _model_for(annotation)
        if sub is not None:
            yield from _unknown_keys(sub, value, here)
        elif (item_model := _dict_model(annotation)) is not None and isinstance(value, dict):
            for name, item in value.items():
                yield from _unknown_keys(item_model, item, (*here, str(name)))


def _misplaced_hint(key_path: tuple[str, ...]) -> str:
    """Say which section a key belongs to when it was written under the wrong header (or none)."""
    name = key_path[-1]
    homes = [
        section
        for section, field in Settings.model_fields.items()
        if (model := _model_for(field.annotation)) is not None and name in model.model_fields
    ]
    if homes and len(key_path) <= 2:
        return f"`{name}` belongs under [{homes[0]}]; move it below that header"
    return "remove it or check its spelling"


def _env_tree(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Our variables as a nested dict of lower-case keys, and each key path's variable name."""
    tree: dict[str, Any] = {}
    names: dict[tuple[str, ...], str] = {}
    for name, value in env.items():
        if not name.upper().startswith(ENV_PREFIX) or value == "":
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        names[path] = name
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = value
    return tree, names


class _Locator:
    """Says where a key's effective value came from, to point the user at the right place."""

    def __init__(self, doc: TomlFile | None, env_names: dict[tuple[str, ...], str]) -> None:
        self.doc = doc
        self.env_names = env_names

    def env_var(self, path: tuple[str, ...]) -> str | None:
        lowered = tuple(p.lower() for p in path)
        # A variable may set the key itself or a whole table above it as JSON.
        for length in range(len(lowered), 0, -1):
            if lowered[:length] in self.env_names:
                return self.env_names[lowered[:length]]
        return None

    def error(self, path: tuple[str, ...], message: str, hint: str | None) -> SettingsError:
        dotted = ".".join(path)
        env_var = self.env_var(path)
        if env_var:
            return SettingsError(message, env_var=env_var, key=dotted, hint=hint)
        if self.doc is not None:
            # Either the bad value is in the file, or the fix (adding the key) belongs there.
            return SettingsError(
                message, file=self.doc.path, line=self.doc.line_of(path), key=dotted, hint=hint
            )
        return SettingsError(message, key=dotted, hint=hint)


_SECRET_KEYS = frozenset({"client_secret", "certificate_passphrase", "token"})


def _from_validation_error(exc: ValidationError, locator: _Locator) -> SettingsError:
    """Turn pydantic's report into one clear SettingsError (the first problem, in file order)."""
    problems: list[SettingsError] = []
    for item in exc.errors(include_url=False):
        path = tuple(str(p) for p in item["loc"])
        ctx = item.get("ctx") or {}
        if item["type"] == "dvsync":
            message, hint = ctx["message"], ctx.get("hint")
            if ctx.get("key"):
                path = tuple(ctx["key"].split("."))
        elif item["type"] == "missing":
            message, hint = "this key is required", f"add `{path[-1]}`"
        elif item["type"] == "extra_forbidden":
            message, hint = "unknown key", "remove it or check its spelling"
        else:
            message, hint = item["msg"], None
            if path and path[-1] not in _SECRET_KEYS and not isinstance(item.get("input"), dict | list):
                # Show what was given, except for secrets.
                message = f"{message} (got {item.get('input')!r})"
            elif path and path[-1] in _SECRET_KEYS:
                message = item["msg"].split(",")[0]
        problems.append(locator.error(path, message, hint))
    problems.sort(key=lambda p: (p.env_var is None, p.line or 0))
    first = problems[0]
    first.also = problems[1:]
    first.args = (first._render(),)
    return first


def _config_path(config_path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if config_path is not None:
        return Path(config_path).expanduser()
    if env.get(CONFIG_ENV_VAR):
        return Path(env[CONFIG_ENV_VAR]).expanduser()
    default = Path("config.toml")
    return default if default.is_file() else None


# (section, key) of every path-valued setting, resolved after validation.
_PATH_KEYS: tuple[tuple[str, str], ...] = (
    ("dataverse", "ca_bundle"),
    ("auth", "certificate_path"),
    ("auth", "token_cache_path"),
    ("mirror", "path"),
    ("mappings", "dir"),
)


def _resolve_paths(settings: Settings, locator: _Locator) -> None:
    base = locator.doc.path.parent.resolve() if locator.doc is not None else Path.cwd()
    for section, key in _PATH_KEYS:
        model = getattr(settings, section)
        value: Path | None = getattr(model, key)
        if value is None:
            continue
        value = value.expanduser()
        if not value.is_absolute():
            from_env = locator.env_var((section, key)) is not None
            value = (Path.cwd() if from_env else base) / value
        setattr(model, key, value)


def _check_readable_file(settings: Settings, locator: _Locator, section: str, key: str, what: str) -> None:
    path: Path | None = getattr(getattr(settings, section), key)
    if path is None:
        return
    if not path.exists():
        raise locator.error((section, key), f"{what} `{path}` does not exist", "check the path")
    if not path.is_file():
        raise locator.error((section, key), f"{what} `{path}` is not a file", "point it at the file itself")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise locator.error(
            (section, key),
            f"{what} `{path}` cannot be read ({exc.strerror or exc.__class__.__name__})",
            "check its permissions: the user running dvsync needs read access",
        ) from None


def load_settings(config_path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load dvsync's settings from ``config.toml`` and the environment, environment winning.

    Args:
        config_path: the config file; default ``$DVSYNC_CONFIG``, else ``./config.toml`` if it
            exists, else none (defaults only).
        env: the environment to read ``DVSYNC__*`` and ``DVSYNC_CONFIG`` from; default
            ``os.environ``.

    Returns:
        The validated settings, with relative paths made absolute.

    Raises:
        ConfigError: (a :class:`SettingsError`) naming the file and line or the environment
            variable, the key, what is wrong and how to fix it.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    path = _config_path(config_path, environ)
    doc = load_toml(path) if path is not None else None
    env_data, env_names = _env_tree(environ)
    locator = _Locator(doc, env_names)

    if doc is not None:
        for key_path, suggestions in _unknown_keys(Settings, doc.data):
            hint = f"did you mean `{suggestions[0]}`?" if suggestions else _misplaced_hint(key_path)
            raise SettingsError(
                f"unknown key `{key_path[-1]}`",
                file=doc.path,
                line=doc.line_of(key_path),
                key=".".join(key_path),
                hint=hint,
            )
    for key_path, suggestions in _unknown_keys(Settings, env_data):
        name = env_names.get(key_path) or env_var_name(key_path)
        hint = (
            f"did you mean {env_var_name((*key_path[:-1], suggestions[0]))}?"
            if suggestions
            else "remove it or check its spelling"
        )
        raise SettingsError("unknown setting", env_var=name, key=".".join(key_path), hint=hint)

    token = LOAD_CONTEXT.set(LoadContext(env=environ, doc=doc))
    try:
        settings = Settings()
    except ValidationError as exc:
        raise _from_validation_error(exc, locator) from None
    except PydanticSettingsError as exc:  # 'error parsing value for field "auth"': bad JSON in a variable
        field = re.search(r'field "([^"]+)"', str(exc))
        names = [n for p, n in env_names.items() if field and p[-1] == field.group(1).lower()]
        raise SettingsError(
            "this value is not valid JSON",
            env_var=names[0] if names else None,
            key=field.group(1) if field else None,
            hint="a whole table in one variable must be a JSON object; simpler: one variable per key, "
            "e.g. DVSYNC__AUTH__MODE=token",
        ) from None
    finally:
        LOAD_CONTEXT.reset(token)

    _resolve_paths(settings, locator)
    _check_readable_file(settings, locator, "auth", "certificate_path", "certificate file")
    _check_readable_file(settings, locator, "dataverse", "ca_bundle", "CA bundle")
    return settings
