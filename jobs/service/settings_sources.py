"""Where settings come from: pydantic-settings sources for an environment mapping and a parsed config.toml."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
)

__all__ = ["LOAD_CONTEXT", "LoadContext", "MappingEnvSource", "TomlSource"]

from core.tomlfile import TomlFile


@dataclass
class LoadContext:
    env: Mapping[str, str]
    doc: TomlFile | None


LOAD_CONTEXT: ContextVar[LoadContext | None] = ContextVar("dvsync_settings_context", default=None)


class MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._mapping = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._mapping.items() if v != ""}


class TomlSource(PydanticBaseSettingsSource):
    """The already-parsed config.toml (parsed once, with line numbers, by core.tomlfile)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)
