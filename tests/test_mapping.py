"""Mapping files: static validation with file/line/key, org validation with suggestions, coercions."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from fake_dataverse import LEAD_COLUMNS, column, lead_org

from connector.metadata import TableDefinition
from core.errors import ConfigError
from jobs.service.mapping import (
    MappingErrors,
    TableReader,
    load_mappings,
    load_outputs,
    load_table_mapping,
    validate_against_org,
    validate_for_jobs,
)

REPO_MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD_LEAD = """\
table = "lead"
entity = "lead"

[fields]
first_name = "firstname"
email = { column = "emailaddress1", type = "string" }
source = { column = "leadsourcecode", type = "choice", values = { 8 = "Web" } }
status = { column = "statecode", type = "choice", values = { 0 = "open", 1 = "qualified" } }
employees = { column = "numberofemployees", type = "integer" }
revenue = { column = "revenue", type = "money" }
created_on = { column = "createdon", type = "datetime" }
account = { column = "parentaccountid", type = "lookup" }
do_not_email = { column = "donotemail", type = "boolean" }
"""


def lead_definition(*extra) -> TableDefinition:
    return (
        lead_org().get_table("lead")
        if not extra
        else TableDefinition(
            "lead", "leads", "leadid", None, True, {c.logical_name: c for c in [*LEAD_COLUMNS, *extra]}
        )
    )


def test_the_shipped_mappings_load_and_cover_every_job():
    mappings = load_mappings(REPO_MAPPINGS, prefix="dvs")
    assert {"lead", "account", "contact", "salesorder", "email", "phonecall", "appointment"} <= set(
        mappings.tables
    )
    assert mappings.tables["salesorder"].entity == "order"
    assert [t.name for t in mappings.by_entity("activity")] == ["appointment", "email", "phonecall"]
    assert validate_for_jobs(mappings, ["scoring", "duplicates", "rfm", "clv"]) == []
    score = next(o for o in mappings.outputs if (o.table, o.result) == ("lead", "score"))
    assert score.schema_name == "dvs_LeadScore" and score.logical_name == "dvs_leadscore"
    # Every result on lead, account and contact has a column a salesperson can read.
    assert all(o.display_name and len(o.description) > 20 for o in mappings.outputs)
    assert {o.result for o in mappings.outputs if o.table == "lead"} >= {
        "score",
        "grade",
        "factors",
        "trend",
        "sales_ready",
        "duplicate_group",
        "duplicate_score",
        "suggested_master",
        "scored_on",
    }


def test_unknown_keys_types_and_fields_are_all_reported_with_lines(tmp_path):
    path = write(
        tmp_path,
        "lead.toml",
        """\
table = "lead"
entity = "lead"
enabeld = true

[fields]
emial = { column = "emailaddress1" }
phone = { column = "telephone1", type = "strng" }
status = { column = "statecode", type = "choice", values = { open = "open" } }
created_on = { column = "createdon", type = "string" }
lead_id = "leadid"
""",
    )
    with pytest.raises(MappingErrors) as caught:
        load_table_mapping(path)
    problems = {p.key: p for p in caught.value.problems}
    assert problems["enabeld"].line == 3 and "`enabled`" in problems["enabeld"].hint
    assert str(caught.value).startswith("6 problems")
    assert problems["fields.emial"].line == 6 and "did you mean `email`" in problems["fields.emial"].hint
    assert problems["fields.created_on.type"].line == 9 and "must hold datetime" in str(
        problems["fields.created_on.type"]
    )
    assert (
        problems["fields.phone.type"].line == 7
        and "did you mean `string`" in problems["fields.phone.type"].hint
    )
    assert problems["fields.status.values.open"].line == 8
    assert problems["fields.lead_id"].line == 10
    assert f"{path}:3 [enabeld]" in str(caught.value)


def test_an_unknown_entity_is_suggested(tmp_path):
    path = write(
        tmp_path, "lead.toml", 'table = "lead"\nentity = "leed"\n[fields]\nemail = "emailaddress1"\n'
    )
    with pytest.raises(MappingErrors) as caught:
        load_table_mapping(path)
    (problem,) = caught.value.problems
    assert problem.key == "entity" and problem.line == 2 and problem.hint == "did you mean `lead`?"


def test_a_near_miss_of_a_canonical_field_is_caught_but_custom_fields_are_allowed(tmp_path):
    path = write(
        tmp_path,
        "lead.toml",
        'table = "lead"\nentity = "lead"\n[fields]\nemial = "emailaddress1"\nwebinar_attended = '
        '{ column = "new_webinar", type = "boolean" }\n',
    )
    with pytest.raises(MappingErrors) as caught:
        load_table_mapping(path)
    (problem,) = caught.value.problems
    assert problem.key == "fields.emial" and problem.line == 4 and "did you mean `email`" in problem.hint


def test_a_type_that_cannot_fill_the_canonical_field_is_an_error(tmp_path):
    path = write(
        tmp_path,
        "salesorder.toml",
        'table = "salesorder"\nentity = "order"\n[fields]\n'
        'amount = { column = "totalamount", type = "string" }\n',
    )
    with pytest.raises(MappingErrors) as caught:
        load_table_mapping(path)
    assert "must hold number" in str(caught.value) and "money" in caught.value.problems[0].hint


def test_output_file_errors(tmp_path):
    path = write(
        tmp_path,
        "outputs.toml",
        """\
[lead.scroe]
column = "Score"
type = "integer"
display_name = "Score"
description = "x"

[lead.grade]
column = "Grade"
type = "integer"
display_name = "Grade"

[lead.factors]
column = "Lead Factors"
type = "memo"
display_name = "Why"
description = "why"
""",
    )
    with pytest.raises(MappingErrors) as caught:
        load_outputs(path, "dvs")
    keys = {p.key: p for p in caught.value.problems}
    assert "did you mean `score`" in keys["lead.scroe"].hint and keys["lead.scroe"].line == 1
    assert keys["lead.grade.type"].line == 9
    assert keys["lead.grade.description"].line == 7  # missing key: points at its table
    assert keys["lead.factors.column"].line == 13


def test_org_validation_suggests_the_closest_column_and_checks_types(tmp_path):
    text = GOOD_LEAD.replace('"emailaddress1"', '"emailadress1"').replace(
        'employees = { column = "numberofemployees", type = "integer" }',
        'employees = { column = "firstname", type = "integer" }',
    )
    mapping = load_table_mapping(write(tmp_path, "lead.toml", text))
    problems, missing = validate_against_org(mapping, lead_definition())
    messages = {p.key: p for p in problems}
    email = messages["fields.email.column"]
    assert (
        email.message == "no column `emailadress1` on lead" and email.hint == "did you mean `emailaddress1`?"
    )
    assert email.line == 6
    assert "is String" in messages["fields.employees.type"].message
    assert messages["fields.employees.type"].line == 9
    assert missing == []


def test_org_validation_reports_choice_values_the_column_lacks(tmp_path):
    text = GOOD_LEAD.replace('values = { 8 = "Web" }', 'values = { 8 = "Web", 99 = "Fax" }')
    mapping = load_table_mapping(write(tmp_path, "lead.toml", text))
    problems, _ = validate_against_org(mapping, lead_definition())
    (problem,) = problems
    assert problem.key == "fields.source.values" and "no option 99" in problem.message


def test_outputs_missing_in_the_org_are_listed_for_provisioning(tmp_path):
    mappings_dir = tmp_path / "m"
    mappings_dir.mkdir()
    write(mappings_dir, "lead.toml", GOOD_LEAD)
    write(
        mappings_dir,
        "outputs.toml",
        '[lead.score]\ncolumn = "LeadScore"\ntype = "integer"\ndisplay_name = "Lead Score"\n'
        'description = "0..100"\n'
        '[lead.grade]\ncolumn = "LeadGrade"\ntype = "string"\nmax_length = 10\ndisplay_name = "Grade"\n'
        'description = "A-D"\n',
    )
    mappings = load_mappings(mappings_dir, prefix="dvs")
    existing = column("dvs_leadgrade", "String", max_length=5)
    problems, missing = validate_against_org(
        mappings.tables["lead"], lead_definition(existing), mappings.outputs
    )
    assert [o.logical_name for o in missing] == ["dvs_leadscore"]
    (problem,) = problems
    assert "holds 5 characters" in problem.message and "max_length = 5" in problem.hint


def test_job_requirements_name_the_missing_fields(tmp_path):
    mappings_dir = tmp_path / "m"
    mappings_dir.mkdir()
    write(mappings_dir, "lead.toml", GOOD_LEAD)
    mappings = load_mappings(mappings_dir)
    problems = validate_for_jobs(mappings, ["duplicates", "rfm"])
    text = "\n".join(str(p) for p in problems)
    assert "job `duplicates` needs `last_name`, `company`, `phone`" in text
    assert "job `rfm` needs order records" in text


def test_reader_selects_only_mapped_columns_and_coerces(tmp_path):
    mapping = load_table_mapping(write(tmp_path, "lead.toml", GOOD_LEAD))
    reader = TableReader.bind(mapping, lead_definition())
    assert reader.select == [
        "leadid",
        "modifiedon",
        "firstname",
        "emailaddress1",
        "leadsourcecode",
        "statecode",
        "numberofemployees",
        "revenue",
        "createdon",
        "_parentaccountid_value",
        "donotemail",
    ]
    records = [
        {
            "@odata.etag": 'W/"7"',
            "leadid": "AAAAAAAA-0000-0000-0000-000000000001",
            "firstname": "Ana",
            "emailaddress1": "ana@x.com",
            "leadsourcecode": 10,
            "statecode": 1,
            "numberofemployees": 12,
            "revenue": 20000.0,
            "createdon": "2025-03-01T10:00:00Z",
            "modifiedon": "2025-03-02T10:00:00Z",
            "_parentaccountid_value": "BBBBBBBB-0000-0000-0000-000000000002",
            "donotemail": True,
        },
        {
            "@odata.etag": 'W/"8"',
            "leadid": "aaaaaaaa-0000-0000-0000-000000000003",
            "firstname": None,
            "emailaddress1": None,
            "leadsourcecode": 77,
            "statecode": 0,
            "numberofemployees": None,
            "revenue": None,
            "createdon": "2025-03-01T12:00:00+02:00",
            "modifiedon": "2025-03-02T10:00:00Z",
            "_parentaccountid_value": None,
            "donotemail": False,
        },
    ]
    frame = reader.frame(records)
    assert frame["lead_id"].tolist() == [
        "aaaaaaaa-0000-0000-0000-000000000001",
        "aaaaaaaa-0000-0000-0000-000000000003",
    ]
    # The file's label wins, the org's label fills the rest, an unknown option keeps its number.
    assert frame["source"].tolist() == ["Other", "77"]
    assert frame["status"].tolist() == ["qualified", "open"]
    assert frame["employees"].dtype == "Int64" and pd.isna(frame["employees"][1])
    assert frame["revenue"].dtype == float
    assert frame["created_on"][1] == pd.Timestamp("2025-03-01T10:00:00Z")
    assert frame["account"][0] == "bbbbbbbb-0000-0000-0000-000000000002"
    assert frame["do_not_email"].tolist() == [True, False]
    assert frame["_etag"][0] == 'W/"7"'


def test_polymorphic_lookups_and_constants(tmp_path):
    path = write(
        tmp_path,
        "email.toml",
        'table = "email"\nentity = "activity"\n[fields]\n'
        'activity_type = { type = "constant", value = "email" }\n'
        'lead_id = { column = "regardingobjectid", type = "lookup", targets = ["lead"], '
        'type_column = "new_regardingtable" }\n'
        'direction = { column = "directioncode", type = "boolean", '
        'values = { true = "outgoing", false = "incoming" } }\n',
    )
    mapping = load_table_mapping(path)
    definition = TableDefinition(
        "email",
        "emails",
        "activityid",
        None,
        True,
        {
            c.logical_name: c
            for c in [
                column("regardingobjectid", "Lookup"),
                # A custom text column an org keeps for its own reasons; not the EntityName companion.
                column("new_regardingtable", "String"),
                column("directioncode", "Boolean"),
                column("modifiedon", "DateTime"),
            ]
        },
    )
    reader = TableReader.bind(mapping, definition)
    assert "_regardingobjectid_value" in reader.select and "new_regardingtable" in reader.select
    base = {"modifiedon": "2025-01-01T00:00:00Z", "@odata.etag": 'W/"1"'}
    frame = reader.frame(
        [
            {
                **base,
                "activityid": "1",
                "_regardingobjectid_value": "L1",
                "new_regardingtable": "lead",
                "directioncode": True,
            },
            {
                **base,
                "activityid": "2",
                "_regardingobjectid_value": "A1",
                "new_regardingtable": "account",
                "directioncode": False,
            },
            {
                **base,
                "activityid": "3",
                "_regardingobjectid_value": "L2",
                "new_regardingtable": 4,
                "_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname": None,
                "directioncode": None,
            },
        ]
    )
    assert frame["activity_type"].tolist() == ["email"] * 3
    assert (
        frame["lead_id"].tolist()[0] == "l1" and pd.isna(frame["lead_id"][1]) and frame["lead_id"][2] == "l2"
    )
    assert frame["direction"].tolist()[:2] == ["outgoing", "incoming"] and pd.isna(frame["direction"][2])


def test_a_value_the_type_cannot_read_names_the_mapping(tmp_path):
    mapping = load_table_mapping(write(tmp_path, "lead.toml", GOOD_LEAD))
    reader = TableReader.bind(mapping, lead_definition())
    with pytest.raises(ConfigError) as caught:
        reader.frame([{"leadid": "1", "numberofemployees": "many", "modifiedon": "2025-01-01T00:00:00Z"}])
    assert caught.value.key == "fields.employees.type" and caught.value.line == 9


def test_every_dataverse_date_is_read_and_an_unreadable_one_is_reported_with_its_record(tmp_path):
    mapping = load_table_mapping(write(tmp_path, "lead.toml", GOOD_LEAD))
    reader = TableReader.bind(mapping, lead_definition())
    stamp = "2025-01-01T00:00:00Z"
    problems: list[str] = []
    frame = reader.frame(
        [
            {"leadid": "A", "createdon": "9999-12-31T23:59:59Z", "modifiedon": stamp},
            {"leadid": "B", "createdon": "0001-01-01T00:00:00Z", "modifiedon": stamp},
            {"leadid": "C", "createdon": "not a date", "modifiedon": stamp},
        ],
        problems,
    )
    created = frame["created_on"]
    assert created[0] == pd.Timestamp("9999-12-31T23:59:59Z") and created[1].year == 1
    assert pd.isna(created[2])
    assert problems == ["record c: `createdon` = 'not a date' is not a date-time; stored empty"]


def test_output_values_are_converted_for_the_wire(tmp_path):
    outputs = load_outputs(REPO_MAPPINGS / "outputs.toml", "dvs")
    by = {(o.table, o.result): o for o in outputs}
    assert by[("lead", "score")].to_wire(pd.Series([71.6, None, 140])) == [72, None, 100]
    p_alive = by[("account", "p_alive")]
    assert p_alive.to_wire(pd.Series([0.314, 1.0])) == [31.0, 100.0]
    # What the mirror holds is already in the column's units: compare like with like.
    assert p_alive.to_wire(pd.Series([31.0, None]), scaled=True) == [31.0, None]
    grade = by[("lead", "grade")]
    assert grade.to_wire(pd.Series(["A", None])) == ["A", None]
    long = by[("account", "value_reason")].to_wire(pd.Series(["x" * 400]))[0]
    assert len(long) == 300 and long.endswith("…")
    stamp = pd.Series([pd.Timestamp("2026-01-05T09:30:00+01:00")])
    assert by[("lead", "scored_on")].to_wire(stamp) == ["2026-01-05T08:30:00Z"]
    assert by[("lead", "sales_ready")].to_wire(pd.Series([True, False, None])) == [True, False, None]


def test_control_and_bidi_override_characters_never_reach_dynamics():
    outputs = load_outputs(REPO_MAPPINGS / "outputs.toml", "dvs")
    label = next(o for o in outputs if (o.table, o.result) == ("lead", "existing_contact"))
    hostile = "Jane\x00 Doe\u202e<moc.x@enaj>\u2066 \x1b[31m\ud800ok\nline two\tend"
    # object dtype: with pyarrow installed, pandas 3 would store text as Arrow, which refuses lone surrogates.
    wire = label.to_wire(pd.Series([hostile, None], dtype=object))
    assert wire == ["Jane Doe<moc.x@enaj> [31mok\nline two\tend", None]


def test_mapping_directory_problems(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_mappings(tmp_path / "nope")
    assert caught.value.key == "mappings.dir"
    copy = tmp_path / "m"
    shutil.copytree(REPO_MAPPINGS, copy)
    write(copy, "lead2.toml", GOOD_LEAD)
    with pytest.raises(MappingErrors) as caught:
        load_mappings(copy, prefix="dvs")
    assert "already mapped by lead.toml" in str(caught.value)
    assert (
        load_mappings(REPO_MAPPINGS, prefix="dvs").enabled_tables(["leads"] if False else ["lead"])[0].name
        == "lead"
    )
    with pytest.raises(ConfigError) as caught:
        load_mappings(REPO_MAPPINGS, prefix="dvs").enabled_tables(["leed"])
    assert "did you mean `lead`" in str(caught.value)


def order_definition(*extra) -> TableDefinition:
    columns = [
        column("salesorderid", "Uniqueidentifier"),
        column("customerid", "Customer"),
        column("customeridtype", "EntityName"),
        column("totalamount", "Money"),
        column("name", "String", max_length=300),
        column("modifiedon", "DateTime"),
        *extra,
    ]
    return TableDefinition(
        "salesorder", "salesorders", "salesorderid", None, True, {c.logical_name: c for c in columns}
    )


def order_mapping(tmp_path, fields: str):
    text = f'table = "salesorder"\nentity = "order"\n[fields]\n{fields}'
    return load_table_mapping(write(tmp_path, "salesorder.toml", text))


def test_shipped_mappings_read_lookup_types_from_the_annotation_not_a_companion_column():
    mappings = load_mappings(REPO_MAPPINGS)
    order = mappings.tables["salesorder"]
    assert order.fields["customer_type"].type == "lookup_type"
    assert order.fields["customer_type"].column == "customerid"
    reader = TableReader.bind(
        order,
        order_definition(
            column("datefulfilled", "DateTime"), column("statecode", "State"), column("createdon", "DateTime")
        ),
    )
    assert reader.annotations == ["Microsoft.Dynamics.CRM.lookuplogicalname"]
    assert "_customerid_value" in reader.select
    assert not any(name.endswith(("idtype", "typecode")) for name in reader.select)
    for name, mapping in mappings.tables.items():
        for field in mapping.fields.values():
            assert field.type_column is None, name
    # contact.account_id keeps accounts only: it needs the annotation too; account needs none.
    assert mappings.tables["contact"].fields["account_id"].needs_lookup_table
    assert not any(f.needs_lookup_table for f in mappings.tables["account"].fields.values())


def test_a_reader_without_polymorphic_fields_asks_for_no_annotation(tmp_path):
    mapping = order_mapping(tmp_path, 'customer_id = { column = "customerid", type = "lookup" }\n')
    assert TableReader.bind(mapping, order_definition()).annotations == []


def test_customer_type_is_coerced_from_the_lookuplogicalname_annotation(tmp_path):
    mapping = order_mapping(
        tmp_path,
        'customer_id = { column = "customerid", type = "lookup" }\n'
        'customer_type = { column = "customerid", type = "lookup_type" }\n',
    )
    reader = TableReader.bind(mapping, order_definition())
    annotated = "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"
    base = {"modifiedon": "2025-01-01T00:00:00Z", "@odata.etag": 'W/"1"'}
    frame = reader.frame(
        [
            {**base, "salesorderid": "O1", annotated: "account", "_customerid_value": "A-1"},
            {**base, "salesorderid": "O2", annotated: "contact", "_customerid_value": "C-1"},
            {**base, "salesorderid": "O3", "_customerid_value": None},
        ]
    )
    assert frame["customer_id"].tolist()[:2] == ["a-1", "c-1"]
    assert frame["customer_type"].tolist()[:2] == ["account", "contact"]
    assert pd.isna(frame["customer_id"][2]) and pd.isna(frame["customer_type"][2])


def test_check_refuses_an_entityname_companion_as_type_column_with_the_new_form_as_hint(tmp_path):
    mapping = order_mapping(
        tmp_path,
        'customer_id = { column = "customerid", type = "lookup", type_column = "customeridtype" }\n'
        'customer_type = { column = "customerid", type = "lookup_type", type_column = "customeridtype" }\n',
    )
    problems, _ = validate_against_org(mapping, order_definition())
    assert [p.key for p in problems] == ["fields.customer_id.type_column", "fields.customer_type.type_column"]
    assert all(p.line == i + 4 for i, p in enumerate(problems))
    assert "EntityName companion of `customerid`" in problems[0].message
    assert "Could not find a property named 'customeridtype'" in problems[0].message
    assert "remove `type_column`" in problems[0].hint and "lookuplogicalname" in problems[0].hint


def test_check_refuses_mapping_the_companion_column_itself(tmp_path):
    mapping = order_mapping(tmp_path, 'customer_type = { column = "customeridtype", type = "string" }\n')
    problems, _ = validate_against_org(mapping, order_definition())
    assert [p.key for p in problems] == ["fields.customer_type.column"]
    assert problems[0].hint.startswith(
        'map the lookup itself: customer_type = { column = "customerid", type = "lookup_type" }'
    )


def test_the_metadatas_isvalidodataattribute_decides_when_it_is_known(tmp_path):
    # AttributeOf names the lookup even when the names do not follow the usual pattern.
    companion = replace(column("new_kind", "EntityName"), is_valid_odata=False, attribute_of="customerid")
    mapping = order_mapping(tmp_path, 'kind = { column = "new_kind", type = "string" }\n')
    problems, _ = validate_against_org(mapping, order_definition(companion))
    assert len(problems) == 1 and 'column = "customerid", type = "lookup_type"' in problems[0].hint
    # An EntityName column the Web API does expose (activitytypecode on activities) is fine.
    exposed = replace(column("activitytypecode", "EntityName"), is_valid_odata=True)
    mapping = order_mapping(tmp_path, 'kind = { column = "activitytypecode", type = "string" }\n')
    assert validate_against_org(mapping, order_definition(exposed))[0] == []


def test_lookup_type_must_read_a_lookup_column(tmp_path):
    mapping = order_mapping(tmp_path, 'customer_type = { column = "name", type = "lookup_type" }\n')
    problems, _ = validate_against_org(mapping, order_definition())
    assert len(problems) == 1 and problems[0].key == "fields.customer_type.type"
    assert "`name` on salesorder is String" in problems[0].message
    mapping = order_mapping(tmp_path, 'customer_type = { column = "customerid", type = "lookup_type" }\n')
    assert validate_against_org(mapping, order_definition())[0] == []
