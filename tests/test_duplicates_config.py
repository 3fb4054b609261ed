from pathlib import Path

import pandas as pd
import pytest

from core.errors import ConfigError
from jobs.leads.duplicates.config import load_duplicate_config
from jobs.leads.duplicates.detect import FieldSpec, find_duplicates

SHIPPED = Path(__file__).resolve().parents[1] / "mappings" / "duplicates.toml"


@pytest.mark.parametrize("table", ["lead", "contact", "account"])
def test_the_shipped_file_loads_for_every_table(table):
    config = load_duplicate_config(SHIPPED, table)
    assert config.table == table
    assert config.id_column == f"{table}_id"
    assert config.fields
    assert config.threshold is None  # the model chooses


def test_the_shipped_lead_section_is_what_its_comments_say():
    config = load_duplicate_config(SHIPPED, "lead")
    assert config.fields["first_name"] == FieldSpec("name")
    assert config.fields["email"] == FieldSpec("email")
    assert config.swap_names == ("first_name", "last_name")
    assert set(config.links) == {"contact", "account"}
    account = config.link_kwargs("account")
    assert account["right_columns"] == {"company": "name"}
    assert account["right_id"] == "account_id"
    assert account["swap_names"] is None  # no name fields in this link


def test_config_drives_a_run():
    config = load_duplicate_config(SHIPPED, "contact")
    contacts = pd.DataFrame(
        {
            "contact_id": ["1", "2", "3"],
            "first_name": ["Ann", "ann", "Bo"],
            "last_name": ["Lee", "Lee ", "Ek"],
            "email": ["ann@x.com", "ANN+1@x.com", "bo@y.se"],
            "phone": ["(415) 555-2671", "415.555.2671", None],
            "mobile_phone": [None, None, None],
            "street": ["1 Main St", "1 Main Street", "2 Elm Rd"],
            "city": ["Springfield", "Springfield", "Oslo"],
            "postcode": ["12345", "12345", "0150"],
        }
    )
    pairs = find_duplicates(contacts, **config.find_kwargs())
    assert list(zip(pairs["id_left"], pairs["id_right"], strict=True)) == [("1", "2")]


def write(tmp_path, text):
    path = tmp_path / "duplicates.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
[lead]
id_column = "lead_id"

[lead.fields]
first_name = "name"
email = "email"
"""


def test_a_minimal_file_gets_the_defaults(tmp_path):
    config = load_duplicate_config(write(tmp_path, GOOD), "lead")
    assert config.phone_region == "US"
    assert config.max_block_size == 50
    assert config.min_cohesion == 0.5
    assert config.master_by == ("completeness", "modified_on")
    assert config.blocking is None


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            GOOD.replace('email = "email"', 'email = "emial"'),
            r"duplicates.toml:6 \[lead.fields.email\]: unknown comparison kind 'emial' "
            r"\(did you mean 'email'\?",
        ),
        (
            GOOD.replace("email = ", "e_mail = "),
            r"duplicates.toml:6 \[lead.fields.e_mail\]: lead has no column 'e_mail' "
            r"\(did you mean 'email'\?\)",
        ),
        (
            GOOD.replace('id_column = "lead_id"', 'id_column = "lead_id"\nthreshold = 1.5'),
            r"duplicates.toml:3 \[lead.threshold\]: threshold must be a probability strictly between 0 and 1",
        ),
        (
            GOOD.replace('id_column = "lead_id"', 'id_column = "lead_id"\nthreshold = "high"'),
            r":3 \[lead.threshold\]: threshold must be a probability",
        ),
        (
            GOOD.replace('id_column = "lead_id"', 'id_column = "lead_id"\nphone_region = "UK"'),
            r":3 \[lead.phone_region\]: unknown phone region 'UK'",
        ),
        (
            GOOD.replace('id_column = "lead_id"', 'id_column = "lead_id"\ntreshold = 0.7'),
            r":3 \[lead.treshold\]: unknown setting 'treshold' \(did you mean 'threshold'\?\)",
        ),
        (
            GOOD.replace('id_column = "lead_id"', 'id_column = "leadid"'),
            r":2 \[lead.id_column\]: lead has no column 'leadid' \(did you mean 'lead_id'\?\)",
        ),
        (
            GOOD + '\n[lead.blocking]\npasses = [["emial"]]\n',
            r":9 \[lead.blocking.passes\]: pass 1: blocking key 'emial'.*did you mean 'email'",
        ),
        (
            GOOD + "\n[lead.cluster]\nmin_cohesion = 2\n",
            r":9 \[lead.cluster.min_cohesion\]: must be between 0 and 1",
        ),
        (
            GOOD + '\n[lead.link.contacts]\nfields = ["email"]\n',
            r":8 \[lead.link.contacts\]: unknown table 'contacts' \(did you mean 'contact'\?\)",
        ),
        (
            GOOD + '\n[lead.link.account]\nfields = ["email", "first_name"]\n',
            r"\[lead.link.account.fields\]: account has no column 'first_name'",
        ),
        (
            GOOD + "\n[lead.swap_names]\n",
            r"\[lead.swap_names\]: must be two compared fields of kind 'name'",
        ),
    ],
)
def test_bad_files_name_the_file_line_and_key(tmp_path, text, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_duplicate_config(write(tmp_path, text), "lead")


def test_missing_section_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"\[leads\]: no \[leads\] section \(did you mean \[lead\]\?\)"):
        load_duplicate_config(write(tmp_path, GOOD), "leads")
    with pytest.raises(ConfigError, match="file not found"):
        load_duplicate_config(tmp_path / "nope.toml", "lead")


def test_columns_can_be_given_for_a_custom_table(tmp_path):
    text = '[member]\nid_column = "member_no"\n[member.fields]\nsurname = "name"\n'
    config = load_duplicate_config(
        write(tmp_path, text), "member", columns={"member": ["member_no", "surname"]}
    )
    assert config.fields == {"surname": FieldSpec("name")}
