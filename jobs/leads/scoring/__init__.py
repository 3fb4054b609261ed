"""Lead scoring: every lead gets a score 0-100, a grade, a trend and the factors behind it.

Modules: ``scorer`` (choose the engine, score, trend), ``rules`` (the consultant's rules in
``mappings/scoring.toml``), ``model`` (logistic regression trained on the org's closed leads),
``store`` (versioned model files and promotion), ``common`` (features and grades both engines share).
"""

from jobs.leads.scoring.common import DEFAULT_GRADES, FREE_MAIL_DOMAINS, Grades
from jobs.leads.scoring.model import (
    DEFAULT_FEATURES,
    MIN_PER_CLASS,
    VERDICT_BANDS,
    LeadModel,
    score_leads,
    train_model,
)
from jobs.leads.scoring.rules import ScoringRules, attach_related, load_rules, parse_rules, score_with_rules
from jobs.leads.scoring.scorer import (
    TREND_CODES,
    TREND_STEADY_BAND,
    EngineChoice,
    choose_engine,
    score,
    trend,
)
from jobs.leads.scoring.store import (
    PROMOTION_RATIO,
    ModelFileError,
    Promotion,
    active_version,
    load_model,
    promote_if_better,
    save_model,
    should_promote,
)

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_GRADES",
    "FREE_MAIL_DOMAINS",
    "MIN_PER_CLASS",
    "PROMOTION_RATIO",
    "TREND_CODES",
    "TREND_STEADY_BAND",
    "VERDICT_BANDS",
    "EngineChoice",
    "Grades",
    "LeadModel",
    "ModelFileError",
    "Promotion",
    "ScoringRules",
    "active_version",
    "attach_related",
    "choose_engine",
    "load_model",
    "load_rules",
    "parse_rules",
    "promote_if_better",
    "save_model",
    "score",
    "score_leads",
    "score_with_rules",
    "should_promote",
    "train_model",
    "trend",
]
