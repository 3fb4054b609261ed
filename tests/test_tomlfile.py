from pathlib import Path

import pytest

from core.errors import ConfigError
from core.tomlfile import closest, load_toml, parse_toml

DOC = '''\
# a comment
title = "x"

[fields]
email = "emailaddress1"
"first name" = 'firstname'
nested.deep = 3

[[segment]]
name = "Champions"
cells = ["555"]

[[segment]]
name = "Lost"
notes = """
fake = "not a key"
"""
after = 1
'''


def test_line_of_finds_keys_headers_and_array_tables():
    doc = parse_toml(DOC, "m.toml")
    assert doc.data["fields"]["first name"] == "firstname"
    assert doc.line_of("title") == 2
    assert doc.line_of("fields") == 4
    assert doc.line_of("fields.email") == 5
    assert doc.line_of(("fields", "first name")) == 6
    assert doc.line_of("fields.nested.deep") == 7
    assert doc.line_of(("segment", 0, "name")) == 10
    assert doc.line_of(("segment", 1, "name")) == 14
    assert doc.line_of(("segment", 1, "after")) == 18


def test_line_of_falls_back_to_enclosing_table():
    doc = parse_toml(DOC, "m.toml")
    assert doc.line_of(("segment", 1, "missing")) == 13
    assert doc.line_of("nowhere") is None


def test_error_names_file_line_key_and_hint():
    doc = parse_toml(DOC, "mappings/lead.toml")
    err = doc.error("fields.email", "no column `emailadress1` on lead", hint="did you mean `emailaddress1`?")
    assert isinstance(err, ConfigError)
    assert str(err) == (
        "mappings/lead.toml:5 [fields.email]: no column `emailadress1` on lead"
        " (did you mean `emailaddress1`?)"
    )
    assert err.exit_code == 2


def test_syntax_error_is_a_config_error_with_line():
    with pytest.raises(ConfigError) as info:
        parse_toml('a = 1\nb = "unterminated\n', "bad.toml")
    assert info.value.file == "bad.toml"
    assert info.value.line == 2
    assert "not valid TOML" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="file not found"):
        load_toml(tmp_path / "absent.toml")


def test_closest_suggests_real_names():
    assert closest("emailadress1", ["emailaddress1", "telephone1", "emailaddress2"])[0] == "emailaddress1"
    assert closest("zzz", ["emailaddress1"]) == []
