"""The standard tables the sandbox serves, after Microsoft's table reference.

Source: ``../shared/dataverse-webapi.md`` §8 (Dynamics 365 CE entity reference, MS-DOC S37) for lead,
account, contact, opportunity, salesorder and salesorderdetail; the activity tables (email,
phonecall, appointment) follow the standard ``activitypointer`` shape: primary key ``activityid``,
``subject``, a polymorphic ``regardingobjectid`` whose navigation properties are named
``regardingobjectid_<target>_<activity>``.

Close to 600 lines on purpose: it is data, one function per table with its columns, lengths,
ranges and choice labels as the reference lists them; splitting it would scatter one table's
definition over files.
"""

from __future__ import annotations

from dataclasses import replace

from connector.sandbox.customization_tables import CUSTOMIZATION_COLUMNS
from connector.sandbox.schema import Column, Table

__all__ = ["TABLES", "table_by_entity_set", "table_by_name"]


def _s(name: str, length: int = 100, **kw) -> Column:
    return Column(name, "String", max_length=length, **kw)


def _memo(name: str, length: int = 2000, **kw) -> Column:
    return Column(name, "Memo", max_length=length, **kw)


def _int(name: str, lo: float = -2147483648, hi: float = 2147483647, **kw) -> Column:
    return Column(name, "Integer", min_value=lo, max_value=hi, **kw)


def _money(name: str, lo: float = -922337203685477, hi: float = 922337203685477, **kw) -> Column:
    return Column(name, "Money", min_value=lo, max_value=hi, precision=2, **kw)


def _dec(name: str, lo: float = -100000000000, hi: float = 100000000000, precision: int = 2, **kw) -> Column:
    return Column(name, "Decimal", min_value=lo, max_value=hi, precision=precision, **kw)


def _dbl(name: str, lo: float, hi: float, precision: int = 5, **kw) -> Column:
    return Column(name, "Double", min_value=lo, max_value=hi, precision=precision, **kw)


def _dt(name: str, date_only: bool = False, **kw) -> Column:
    return Column(name, "DateTime", date_format="DateOnly" if date_only else "DateAndTime", **kw)


def _pick(name: str, options: dict[int, str], **kw) -> Column:
    return Column(name, "Picklist", options=options, **kw)


def _bool(name: str, true: str = "Yes", false: str = "No", **kw) -> Column:
    return Column(name, "Boolean", options={1: true, 0: false}, **kw)


def _lookup(name: str, target: str, **kw) -> Column:
    return Column(name, "Lookup", targets=(target,), **kw)


def _customer(name: str, **kw) -> Column:
    return Column(name, "Customer", targets=("account", "contact"), **kw)


def _state(states: dict[int, tuple[str, int]]) -> Column:
    return Column(
        "statecode",
        "State",
        options={v: label for v, (label, _) in states.items()},
        default_status={v: status for v, (_, status) in states.items()},
        create=False,
        required_level="SystemRequired",
    )


def _status(statuses: dict[int, tuple[str, int]]) -> Column:
    return Column(
        "statuscode",
        "Status",
        options={v: label for v, (label, _) in statuses.items()},
        option_states={v: state for v, (_, state) in statuses.items()},
    )


def _system_columns() -> list[Column]:
    """Audit, ownership and version columns every table has (§8 general rules)."""
    return [
        _dt("createdon", create=False, update=False),
        _dt("modifiedon", create=False, update=False),
        _lookup("createdby", "systemuser", create=False, update=False),
        _lookup("modifiedby", "systemuser", create=False, update=False),
        Column("ownerid", "Owner", targets=("systemuser", "team"), required_level="SystemRequired"),
        Column("owneridtype", "EntityName", create=False, update=False, internal=True),
        _lookup("owningbusinessunit", "businessunit", create=False, update=False),
        Column("versionnumber", "BigInt", create=False, update=False),
        _lookup("transactioncurrencyid", "transactioncurrency"),
        _dec("exchangerate", 0.0000000001, 100000000000, precision=10, create=False, update=False),
    ]


_INDUSTRY = {
    1: "Accounting",
    2: "Agriculture and Non-petrol Natural Resource Extraction",
    3: "Broadcasting Printing and Publishing",
    4: "Brokers",
    5: "Building Supply Retail",
    6: "Business Services",
    7: "Consulting",
    8: "Consumer Services",
    9: "Design, Direction and Creative Management",
    10: "Distributors, Dispatchers and Processors",
    11: "Doctor's Offices and Clinics",
    12: "Durable Manufacturing",
    13: "Eating and Drinking Places",
    14: "Entertainment Retail",
    15: "Equipment Rental and Leasing",
    16: "Financial",
    17: "Food and Tobacco Processing",
    18: "Inbound Capital Intensive Processing",
    19: "Inbound Repair and Services",
    20: "Insurance",
    21: "Legal Services",
    22: "Non-Durable Merchandise Retail",
    23: "Outbound Consumer Service",
    24: "Petrochemical Extraction and Distribution",
    25: "Service Retail",
    26: "SIG Affiliations",
    27: "Social Services",
    28: "Special Outbound Trade Contractors",
    29: "Specialty Realty",
    30: "Transportation",
    31: "Utility Creation and Distribution",
    32: "Vehicle Retail",
    33: "Wholesale",
}
_CONTACT_METHOD = {1: "Any", 2: "Email", 3: "Phone", 4: "Fax", 5: "Mail"}
_ADDRESS_TYPE = {1: "Bill To", 2: "Ship To", 3: "Primary", 4: "Other"}


def _address() -> list[Column]:
    return [
        _s("address1_line1", 250),
        _s("address1_line2", 250),
        _s("address1_line3", 250),
        _s("address1_city", 80),
        _s("address1_stateorprovince", 50),
        _s("address1_postalcode", 20),
        _s("address1_country", 80),
        _s("address1_county", 50),
        _dbl("address1_latitude", -90, 90),
        _dbl("address1_longitude", -180, 180),
    ]


def _lead() -> list[Column]:
    return [
        Column("leadid", "Uniqueidentifier", update=False),
        _s("fullname", 160, create=False, update=False),
        _s("firstname", 50, required_level="Recommended"),
        _s("lastname", 50, required_level="ApplicationRequired"),
        _s("middlename", 50),
        _s("subject", 300, required_level="ApplicationRequired"),
        _s("companyname", 100, required_level="Recommended"),
        _s("jobtitle", 100),
        _s("emailaddress1", 100, format_name="Email"),
        _s("emailaddress2", 100, format_name="Email"),
        _s("emailaddress3", 100, format_name="Email"),
        _s("telephone1", 50, format_name="Phone"),
        _s("telephone2", 50, format_name="Phone"),
        _s("telephone3", 50, format_name="Phone"),
        _s("mobilephone", 20, format_name="Phone"),
        _s("fax", 50),
        _s("websiteurl", 200, format_name="Url"),
        _memo("description"),
        *_address(),
        _money("revenue", 0, 100000000000000),
        _int("numberofemployees", 0, 1000000),
        _money("budgetamount"),
        _money("estimatedamount"),
        _dt("estimatedclosedate", date_only=True),
        _pick("industrycode", _INDUSTRY),
        _pick(
            "leadsourcecode",
            {
                1: "Advertisement",
                2: "Employee Referral",
                3: "External Referral",
                4: "Partner",
                5: "Public Relations",
                6: "Seminar",
                7: "Trade Show",
                8: "Web",
                9: "Word of Mouth",
                10: "Other",
            },
        ),
        _pick("leadqualitycode", {1: "Hot", 2: "Warm", 3: "Cold"}),
        _pick("preferredcontactmethodcode", _CONTACT_METHOD),
        _pick("prioritycode", {1: "Default Value"}),
        _pick("budgetstatus", {0: "No Committed Budget", 1: "May Buy", 2: "Can Buy", 3: "Will Buy"}),
        _pick("purchaseprocess", {0: "Individual", 1: "Committee", 2: "Unknown"}),
        _pick(
            "purchasetimeframe",
            {0: "Immediate", 1: "This Quarter", 2: "Next Quarter", 3: "This Year", 4: "Unknown"},
        ),
        _pick("need", {0: "Must have", 1: "Should have", 2: "Good to have", 3: "No need"}),
        _pick("initialcommunication", {0: "Contacted", 1: "Not Contacted"}),
        _pick("salesstage", {0: "Qualify"}),
        _bool("donotemail", "Do Not Allow", "Allow"),
        _bool("donotphone", "Do Not Allow", "Allow"),
        _bool("donotbulkemail", "Do Not Allow", "Allow"),
        _bool("donotpostalmail", "Do Not Allow", "Allow"),
        _customer("customerid"),
        Column("customeridtype", "EntityName", create=False, update=False, internal=True),
        _lookup("parentaccountid", "account"),
        _lookup("parentcontactid", "contact"),
        _lookup("qualifyingopportunityid", "opportunity"),
        _lookup("campaignid", "campaign"),
        _lookup("accountid", "account", create=False, update=False),
        _lookup("contactid", "contact", create=False, update=False),
        _lookup("masterid", "lead", create=False, update=False),
        _bool("merged", create=False, update=False),
        _state({0: ("Open", 1), 1: ("Qualified", 3), 2: ("Disqualified", 4)}),
        _status(
            {
                1: ("New", 0),
                2: ("Contacted", 0),
                3: ("Qualified", 1),
                4: ("Lost", 2),
                5: ("Cannot Contact", 2),
                6: ("No Longer Interested", 2),
                7: ("Canceled", 2),
            }
        ),
        *_system_columns(),
    ]


def _account() -> list[Column]:
    return [
        Column("accountid", "Uniqueidentifier", update=False),
        _s("name", 160, required_level="ApplicationRequired"),
        _s("accountnumber", 20),
        _s("emailaddress1", 100, format_name="Email"),
        _s("emailaddress2", 100, format_name="Email"),
        _s("telephone1", 50, format_name="Phone"),
        _s("telephone2", 50, format_name="Phone"),
        _s("fax", 50),
        _s("websiteurl", 200, format_name="Url"),
        _memo("description"),
        *_address(),
        _pick("address1_addresstypecode", _ADDRESS_TYPE),
        _money("revenue", 0, 100000000000000),
        _int("numberofemployees", 0, 1000000000),
        _int("sharesoutstanding", 0, 1000000000),
        _pick("accountcategorycode", {1: "Preferred Customer", 2: "Standard"}),
        _pick(
            "customertypecode",
            {
                1: "Competitor",
                2: "Consultant",
                3: "Customer",
                4: "Investor",
                5: "Partner",
                6: "Influencer",
                7: "Press",
                8: "Prospect",
                9: "Reseller",
                10: "Supplier",
                11: "Vendor",
                12: "Other",
            },
        ),
        _pick("industrycode", _INDUSTRY),
        _pick("preferredcontactmethodcode", _CONTACT_METHOD),
        _bool("creditonhold"),
        _money("creditlimit", 0, 100000000000000),
        _bool("donotemail", "Do Not Allow", "Allow"),
        _bool("donotphone", "Do Not Allow", "Allow"),
        _lookup("primarycontactid", "contact"),
        _lookup("parentaccountid", "account"),
        _lookup("originatingleadid", "lead"),
        _lookup("masterid", "account", create=False, update=False),
        _bool("merged", create=False, update=False),
        _state({0: ("Active", 1), 1: ("Inactive", 2)}),
        _status({1: ("Active", 0), 2: ("Inactive", 1)}),
        *_system_columns(),
    ]


def _contact() -> list[Column]:
    return [
        Column("contactid", "Uniqueidentifier", update=False),
        _s("fullname", 160, create=False, update=False),
        _s("firstname", 50, required_level="Recommended"),
        _s("lastname", 50, required_level="ApplicationRequired"),
        _s("middlename", 50),
        _s("nickname", 50),
        _s("jobtitle", 100),
        _s("department", 100),
        _s("emailaddress1", 100, format_name="Email"),
        _s("emailaddress2", 100, format_name="Email"),
        _s("telephone1", 50, format_name="Phone"),
        _s("telephone2", 50, format_name="Phone"),
        _s("mobilephone", 50, format_name="Phone"),
        _s("fax", 50),
        _s("websiteurl", 200, format_name="Url"),
        _memo("description"),
        *_address(),
        _pick("address1_addresstypecode", _ADDRESS_TYPE),
        _dt("birthdate", date_only=True),
        _pick("gendercode", {1: "Male", 2: "Female"}),
        _pick("preferredcontactmethodcode", _CONTACT_METHOD),
        _pick("accountrolecode", {1: "Decision Maker", 2: "Employee", 3: "Influencer"}),
        _bool("donotemail", "Do Not Allow", "Allow"),
        _bool("donotphone", "Do Not Allow", "Allow"),
        _customer("parentcustomerid"),
        Column("parentcustomeridtype", "EntityName", create=False, update=False, internal=True),
        _lookup("originatingleadid", "lead", update=False),
        _lookup("masterid", "contact", create=False, update=False),
        _bool("merged", create=False, update=False),
        _state({0: ("Active", 1), 1: ("Inactive", 2)}),
        _status({1: ("Active", 0), 2: ("Inactive", 1)}),
        *_system_columns(),
    ]


def _opportunity() -> list[Column]:
    return [
        Column("opportunityid", "Uniqueidentifier", update=False),
        _s("name", 300, required_level="ApplicationRequired"),
        _customer("customerid", required_level="ApplicationRequired"),
        Column("customeridtype", "EntityName", create=False, update=False, internal=True),
        _lookup("parentaccountid", "account"),
        _lookup("parentcontactid", "contact"),
        _lookup("originatingleadid", "lead"),
        _money("estimatedvalue", -1000000000000, 1000000000000),
        _dt("estimatedclosedate", date_only=True),
        _money("actualvalue", -1000000000000, 1000000000000),
        _dt("actualclosedate", date_only=True),
        _money("budgetamount"),
        _int("closeprobability", 0, 100),
        _memo("description"),
        _money("discountamount"),
        _dec("discountpercentage", 0, 100),
        _money("totalamount", create=False, update=False),
        _pick("salesstage", {0: "Qualify", 1: "Develop", 2: "Propose", 3: "Close"}),
        _pick(
            "timeline",
            {0: "Immediate", 1: "This Quarter", 2: "Next Quarter", 3: "This Year", 4: "Not known"},
        ),
        _pick("opportunityratingcode", {1: "Hot", 2: "Warm", 3: "Cold"}),
        _pick("prioritycode", {1: "Default Value"}),
        _s("stepname", 200),
        _state({0: ("Open", 1), 1: ("Won", 3), 2: ("Lost", 4)}),
        _status(
            {1: ("In Progress", 0), 2: ("On Hold", 0), 3: ("Won", 1), 4: ("Canceled", 2), 5: ("Out-Sold", 2)}
        ),
        *_system_columns(),
    ]


def _salesorder() -> list[Column]:
    money_ro = {"create": False, "update": False}
    return [
        Column("salesorderid", "Uniqueidentifier", update=False),
        _s("name", 300, required_level="ApplicationRequired"),
        _s("ordernumber", 100, create=False, update=False, required_level="SystemRequired"),
        _customer("customerid", required_level="ApplicationRequired"),
        Column("customeridtype", "EntityName", create=False, update=False, internal=True),
        _lookup("accountid", "account", create=False, update=False),
        _lookup("contactid", "contact", create=False, update=False),
        _lookup("pricelevelid", "pricelevel", required_level="ApplicationRequired"),
        _lookup("opportunityid", "opportunity"),
        _lookup("quoteid", "quote"),
        _money("totalamount", **money_ro),
        _money("totalamountlessfreight", **money_ro),
        _money("totaldiscountamount", **money_ro),
        _money("totallineitemamount", **money_ro),
        _money("totallineitemdiscountamount", **money_ro),
        _money("totaltax", **money_ro),
        _money("discountamount"),
        _money("freightamount"),
        _dec("discountpercentage", 0, 100),
        _dt("datefulfilled", date_only=True),
        _dt("submitdate", date_only=True),
        _dt("requestdeliveryby", date_only=True),
        _memo("description"),
        _s("emailaddress", 100, format_name="Email"),
        _bool("ispricelocked"),
        _bool("willcall", "Will Call", "Address"),
        _pick("freighttermscode", {1: "FOB", 2: "No Charge"}),
        _pick("paymenttermscode", {1: "Net 30", 2: "2% 10, Net 30", 3: "Net 45", 4: "Net 60"}),
        _pick("prioritycode", {1: "Default Value"}),
        _state(
            {
                0: ("Active", 1),
                1: ("Submitted", 3),
                2: ("Canceled", 4),
                3: ("Fulfilled", 100001),
                4: ("Invoiced", 100003),
            }
        ),
        _status(
            {
                1: ("New", 0),
                2: ("Pending", 0),
                3: ("In Progress", 1),
                4: ("No Money", 2),
                100001: ("Complete", 3),
                100002: ("Partial", 3),
                100003: ("Invoiced", 4),
            }
        ),
        *_system_columns(),
    ]


def _salesorderdetail() -> list[Column]:
    return [
        Column("salesorderdetailid", "Uniqueidentifier", update=False),
        _s("productidname", 100, create=False, update=False),
        _lookup("salesorderid", "salesorder", required_level="SystemRequired"),
        _lookup("productid", "product"),
        _lookup("uomid", "uom"),
        _memo("productdescription", 500),
        _s("productname", 500),
        _bool("isproductoverridden", "Write In", "Existing", update=False),
        _bool("ispriceoverridden", "Override Price", "Use Default"),
        _money("priceperunit"),
        _dec("quantity", -100000000000, 100000000000, precision=5),
        _money("manualdiscountamount"),
        _money("tax"),
        _money("baseamount", create=False, update=False),
        _money("extendedamount", create=False, update=False),
        _int("lineitemnumber", 0),
        _int("sequencenumber", 0),
        _dec("quantityshipped", 0, precision=5),
        _dec("quantitybackordered", 0, precision=5),
        _dec("quantitycancelled", 0, precision=5),
        _dt("requestdeliveryby", date_only=True),
        _bool("willcall", "Will Call", "Address"),
        *_system_columns(),
    ]


_REGARDING_TARGETS = ("account", "contact", "lead", "opportunity", "salesorder")


def _activity(entity: str, extra: list[Column], states: dict, statuses: dict) -> list[Column]:
    return [
        Column("activityid", "Uniqueidentifier", update=False),
        _s("subject", 200),
        _memo("description", 100000),
        Column("regardingobjectid", "Lookup", targets=_REGARDING_TARGETS),
        Column("regardingobjecttypecode", "EntityName", create=False, update=False, internal=True),
        Column("activitytypecode", "EntityName", create=False, update=False),
        _dt("scheduledstart"),
        _dt("scheduledend"),
        _dt("actualstart"),
        _dt("actualend"),
        _int("actualdurationminutes", 0, 2147483647),
        _int("scheduleddurationminutes", 0, 2147483647),
        _pick("prioritycode", {0: "Low", 1: "Normal", 2: "High"}),
        *extra,
        _state(states),
        _status(statuses),
        *_system_columns(),
    ]


def _email() -> list[Column]:
    return _activity(
        "email",
        [
            _bool("directioncode", "Outgoing", "Incoming"),
            _s("sender", 250),
            _memo("torecipients", 500),
            _s("messageid", 320, create=False, update=False),
            _int("opencount", 0, create=False, update=False),
            _int("replycount", 0, create=False, update=False),
        ],
        {0: ("Open", 1), 1: ("Completed", 3), 2: ("Canceled", 5)},
        {
            1: ("Draft", 0),
            8: ("Failed", 0),
            2: ("Completed", 1),
            3: ("Sent", 1),
            4: ("Received", 1),
            6: ("Pending Send", 1),
            7: ("Sending", 1),
            5: ("Canceled", 2),
        },
    )


def _phonecall() -> list[Column]:
    return _activity(
        "phonecall",
        [
            _bool("directioncode", "Outgoing", "Incoming"),
            _s("phonenumber", 200, format_name="Phone"),
            _bool("leftvoicemail"),
        ],
        {0: ("Open", 1), 1: ("Completed", 2), 2: ("Canceled", 3)},
        {1: ("Open", 0), 2: ("Made", 1), 4: ("Received", 1), 3: ("Canceled", 2)},
    )


def _appointment() -> list[Column]:
    return _activity(
        "appointment",
        [_s("location", 200), _bool("isalldayevent")],
        {0: ("Open", 1), 1: ("Completed", 3), 2: ("Canceled", 4), 3: ("Scheduled", 5)},
        {
            1: ("Free", 0),
            2: ("Tentative", 0),
            3: ("Completed", 1),
            4: ("Canceled", 2),
            5: ("Busy", 3),
            6: ("Out of Office", 3),
        },
    )


def _label(name: str) -> str:
    return name.replace("_", " ").title()


def _table(
    logical: str,
    entity_set: str,
    pk: str,
    primary_name: str,
    otc: int,
    columns: list[Column],
    display: str,
    display_plural: str,
    is_activity: bool = False,
) -> Table:
    bound = tuple(
        replace(
            c,
            entity=logical,
            schema_name=c.schema_name or c.logical_name,
            display_name=c.display_name or _label(c.logical_name),
        )
        for c in columns
    )
    return Table(logical, entity_set, pk, primary_name, otc, bound, display, display_plural, is_activity)


# The standard tables, in the order the service document lists them.
TABLES: tuple[Table, ...] = (
    _table("account", "accounts", "accountid", "name", 1, _account(), "Account", "Accounts"),
    _table("contact", "contacts", "contactid", "fullname", 2, _contact(), "Contact", "Contacts"),
    _table(
        "opportunity",
        "opportunities",
        "opportunityid",
        "name",
        3,
        _opportunity(),
        "Opportunity",
        "Opportunities",
    ),
    _table("lead", "leads", "leadid", "fullname", 4, _lead(), "Lead", "Leads"),
    _table("salesorder", "salesorders", "salesorderid", "name", 1088, _salesorder(), "Order", "Orders"),
    _table(
        "salesorderdetail",
        "salesorderdetails",
        "salesorderdetailid",
        "productidname",
        1089,
        _salesorderdetail(),
        "Order Product",
        "Order Products",
    ),
    _table("email", "emails", "activityid", "subject", 4202, _email(), "Email", "Email Messages", True),
    _table(
        "phonecall",
        "phonecalls",
        "activityid",
        "subject",
        4210,
        _phonecall(),
        "Phone Call",
        "Phone Calls",
        True,
    ),
    _table(
        "appointment",
        "appointments",
        "activityid",
        "subject",
        4201,
        _appointment(),
        "Appointment",
        "Appointments",
        True,
    ),
    # Views, charts and forms (connector.sandbox.customization_tables).
    *(_table(*spec) for spec in CUSTOMIZATION_COLUMNS),
)

_BY_NAME = {t.logical_name: t for t in TABLES}
_BY_SET = {t.entity_set: t for t in TABLES}


def table_by_name(logical_name: str) -> Table | None:
    """Return the standard table with that logical name, or None."""
    return _BY_NAME.get(logical_name)


def table_by_entity_set(entity_set: str) -> Table | None:
    """Return the standard table with that entity set name (case-sensitive, as Dataverse), or None."""
    return _BY_SET.get(entity_set)
