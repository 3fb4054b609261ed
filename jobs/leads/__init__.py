"""Lead analytics, pure DataFrame functions: scoring leads, finding duplicates, handling leads.

- :mod:`jobs.leads.scoring`: a 0-100 score, a grade and the reasons, from rules or a model trained
  on the org's own closed leads.
- :mod:`jobs.leads.duplicates`: duplicate leads, contacts and accounts, and leads that already are
  contacts or accounts (it serves all three tables; leads are where duplicates start).
- :mod:`jobs.leads.engagement`: routing, speed-to-lead, stages and dormant leads to re-engage.
"""

__all__ = ["duplicates", "engagement", "scoring"]
