"""FetchXML over the Web API (``GET <entity set>?fetchXml=...``, reference §3.8): parse, check and run it.

:func:`parse_fetchxml` turns the XML into a checked query (unknown names are 400s, unimplemented
features 501s), :func:`parse_sql` does the same for the SQL subset Microsoft's SDK sends as
``?sql=``, and :func:`run_fetch` executes either and returns the body's annotations and records.
"""

from connector.sandbox.fetchxml.parse import FetchQuery, parse_fetchxml
from connector.sandbox.fetchxml.run import MORE_RECORDS, PAGING_COOKIE, run_fetch
from connector.sandbox.fetchxml.sql import parse_sql

__all__ = ["MORE_RECORDS", "PAGING_COOKIE", "FetchQuery", "parse_fetchxml", "parse_sql", "run_fetch"]
