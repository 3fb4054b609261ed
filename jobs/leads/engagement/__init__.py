"""Lead handling, pure DataFrame functions: who gets a lead, how fast they answered, where it stands.

- :mod:`~jobs.leads.engagement.config`: ``mappings/routing.toml`` (unassigned owner, ordered routing
  rules, business hours and response target) and ``[stage]`` / ``[dormant]`` of ``scoring.toml``.
- :mod:`~jobs.leads.engagement.routing`: assign unassigned open leads (round robin, fewest open
  leads, a team or a user), never moving a lead someone holds.
- :mod:`~jobs.leads.engagement.response`: speed-to-lead in business minutes, the SLA flag, and the
  median / 90th percentile / breaches per owner, team and source.
- :mod:`~jobs.leads.engagement.stages`: cold / warm / hot and Lead / MQL / SQL.
- :mod:`~jobs.leads.engagement.dormant`: good-fit leads that went quiet, flagged to re-engage.
"""

from jobs.leads.engagement.config import (
    BusinessCalendar,
    DormantSettings,
    Principal,
    ResponseSettings,
    RoutingConfig,
    RoutingRule,
    StageSettings,
    load_routing,
    load_stage_settings,
    parse_routing,
    parse_stage_settings,
)
from jobs.leads.engagement.dormant import dormant_leads, last_activity
from jobs.leads.engagement.response import (
    business_minutes,
    first_responses,
    response_horizon,
    response_summary,
)
from jobs.leads.engagement.routing import ResolvedRule, matches, route_leads
from jobs.leads.engagement.stages import LIFECYCLE_STAGES, TEMPERATURES, lead_stages

__all__ = [
    "LIFECYCLE_STAGES",
    "TEMPERATURES",
    "BusinessCalendar",
    "DormantSettings",
    "Principal",
    "ResolvedRule",
    "ResponseSettings",
    "RoutingConfig",
    "RoutingRule",
    "StageSettings",
    "business_minutes",
    "dormant_leads",
    "first_responses",
    "last_activity",
    "lead_stages",
    "load_routing",
    "load_stage_settings",
    "matches",
    "parse_routing",
    "parse_stage_settings",
    "response_horizon",
    "response_summary",
    "route_leads",
]
