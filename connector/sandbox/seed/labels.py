"""Choice labels, state/status pairs, two-option labels and DateOnly columns of the seeded tables.

The values and labels are Dataverse's defaults (reference §8); the generator fills these columns,
and the schema and the server's formatted values read the same labels, so they live apart from
the generator.
"""

from __future__ import annotations

__all__ = ["BOOLEAN_LABELS", "DATE_ONLY_COLUMNS", "OPTION_LABELS", "STATUS_STATE"]

_INDUSTRIES = {
    1: "Accounting", 2: "Agriculture and Non-petrol Natural Resource Extraction",
    3: "Broadcasting Printing and Publishing", 4: "Brokers", 5: "Building Supply Retail",
    6: "Business Services", 7: "Consulting", 8: "Consumer Services",
    9: "Design, Direction and Creative Management", 10: "Distributors, Dispatchers and Processors",
    11: "Doctor's Offices and Clinics", 12: "Durable Manufacturing", 13: "Eating and Drinking Places",
    14: "Entertainment Retail", 15: "Equipment Rental and Leasing", 16: "Financial",
    17: "Food and Tobacco Processing", 18: "Inbound Capital Intensive Processing",
    19: "Inbound Repair and Services", 20: "Insurance", 21: "Legal Services",
    22: "Non-Durable Merchandise Retail", 23: "Outbound Consumer Service",
    24: "Petrochemical Extraction and Distribution", 25: "Service Retail", 26: "SIG Affiliations",
    27: "Social Services", 28: "Special Outbound Trade Contractors", 29: "Specialty Realty",
    30: "Transportation", 31: "Utility Creation and Distribution", 32: "Vehicle Retail", 33: "Wholesale",
}  # fmt: skip
_CONTACT_METHOD = {1: "Any", 2: "Email", 3: "Phone", 4: "Fax", 5: "Mail"}
_ACTIVE = {0: "Active", 1: "Inactive"}
_ACTIVE_STATUS = {1: "Active", 2: "Inactive"}

# Option labels of every choice column the seed fills: OPTION_LABELS[table][column][value] = label.
# Values and labels are Dataverse's defaults (reference §8; activity states from Microsoft's "Default
# status and status reason values" list).
OPTION_LABELS: dict[str, dict[str, dict[int, str]]] = {
    "lead": {
        "statecode": {0: "Open", 1: "Qualified", 2: "Disqualified"},
        "statuscode": {1: "New", 2: "Contacted", 3: "Qualified", 4: "Lost", 5: "Cannot Contact",
                       6: "No Longer Interested", 7: "Canceled"},
        "leadsourcecode": {1: "Advertisement", 2: "Employee Referral", 3: "External Referral", 4: "Partner",
                           5: "Public Relations", 6: "Seminar", 7: "Trade Show", 8: "Web", 9: "Word of Mouth",
                           10: "Other"},
        "industrycode": _INDUSTRIES,
        "leadqualitycode": {1: "Hot", 2: "Warm", 3: "Cold"},
        "budgetstatus": {0: "No Committed Budget", 1: "May Buy", 2: "Can Buy", 3: "Will Buy"},
        "purchasetimeframe": {
            0: "Immediate", 1: "This Quarter", 2: "Next Quarter", 3: "This Year", 4: "Unknown",
        },
        "preferredcontactmethodcode": _CONTACT_METHOD,
    },
    "account": {
        "statecode": _ACTIVE,
        "statuscode": _ACTIVE_STATUS,
        "industrycode": _INDUSTRIES,
        "accountcategorycode": {1: "Preferred Customer", 2: "Standard"},
        "customertypecode": {1: "Competitor", 2: "Consultant", 3: "Customer", 4: "Investor", 5: "Partner",
                             6: "Influencer", 7: "Press", 8: "Prospect", 9: "Reseller", 10: "Supplier",
                             11: "Vendor", 12: "Other"},
    },
    "contact": {
        "statecode": _ACTIVE,
        "statuscode": _ACTIVE_STATUS,
        "accountrolecode": {1: "Decision Maker", 2: "Employee", 3: "Influencer"},
        "preferredcontactmethodcode": _CONTACT_METHOD,
    },
    "opportunity": {
        "statecode": {0: "Open", 1: "Won", 2: "Lost"},
        "statuscode": {1: "In Progress", 2: "On Hold", 3: "Won", 4: "Canceled", 5: "Out-Sold"},
        "salesstage": {0: "Qualify", 1: "Develop", 2: "Propose", 3: "Close"},
    },
    "salesorder": {
        "statecode": {0: "Active", 1: "Submitted", 2: "Canceled", 3: "Fulfilled", 4: "Invoiced"},
        "statuscode": {1: "New", 2: "Pending", 3: "In Progress", 4: "No Money", 100001: "Complete",
                       100002: "Partial", 100003: "Invoiced"},
        "paymenttermscode": {1: "Net 30", 2: "2% 10, Net 30", 3: "Net 45", 4: "Net 60"},
    },
    "email": {
        "statecode": {0: "Open", 1: "Completed", 2: "Canceled"},
        "statuscode": {1: "Draft", 2: "Completed", 3: "Sent", 4: "Received", 5: "Canceled", 6: "Pending Send",
                       7: "Sending", 8: "Failed"},
    },
    "phonecall": {
        "statecode": {0: "Open", 1: "Completed", 2: "Canceled"},
        "statuscode": {1: "Open", 2: "Made", 3: "Canceled", 4: "Received"},
    },
    "appointment": {
        "statecode": {0: "Open", 1: "Completed", 2: "Canceled", 3: "Scheduled"},
        "statuscode": {
            1: "Free", 2: "Tentative", 3: "Completed", 4: "Canceled", 5: "Busy", 6: "Out of Office",
        },
    },
}  # fmt: skip

# The statecode each statuscode belongs to: STATUS_STATE[table][statuscode] = statecode.
STATUS_STATE: dict[str, dict[int, int]] = {
    "lead": {1: 0, 2: 0, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2},
    "account": {1: 0, 2: 1},
    "contact": {1: 0, 2: 1},
    "opportunity": {1: 0, 2: 0, 3: 1, 4: 2, 5: 2},
    "salesorder": {1: 0, 2: 0, 3: 1, 4: 2, 100001: 3, 100002: 3, 100003: 4},
    "email": {1: 0, 8: 0, 2: 1, 3: 1, 4: 1, 6: 1, 7: 1, 5: 2},
    "phonecall": {1: 0, 2: 1, 4: 1, 3: 2},
    "appointment": {1: 0, 2: 0, 3: 1, 4: 2, 5: 3, 6: 3},
}

# Two-option columns: BOOLEAN_LABELS[table][column] = {True: label, False: label}.
BOOLEAN_LABELS: dict[str, dict[str, dict[bool, str]]] = {
    "email": {"directioncode": {True: "Outgoing", False: "Incoming"}},
    "phonecall": {"directioncode": {True: "Outgoing", False: "Incoming"}},
    "salesorderdetail": {
        "isproductoverridden": {True: "Write-In", False: "Existing"},
        "ispriceoverridden": {True: "Override Price", False: "Use Default"},
    },
}

# DateOnly columns (Dataverse sends them as "yyyy-MM-dd"); the seed holds them as UTC midnight.
DATE_ONLY_COLUMNS: dict[str, tuple[str, ...]] = {
    "salesorder": ("submitdate", "datefulfilled"),
    "opportunity": ("estimatedclosedate", "actualclosedate"),
}
