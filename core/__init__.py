"""What every layer of dvsync shares: the root of its exceptions and TOML files read with line numbers.

Imports nothing from ``connector`` or ``jobs``; both build on it.
"""

from core.errors import ConfigError, DvsyncError
from core.tomlfile import TomlFile, load_toml
from core.version import __version__

__all__ = ["ConfigError", "DvsyncError", "TomlFile", "__version__", "load_toml"]
