"""Saving, loading and promoting lead-scoring models.

A model directory holds numbered versions and a pointer to the active one::

    models/lead-scoring/
        lead-model-v0001.joblib     the pickled LeadModel (joblib, scikit-learn's recommended way)
        lead-model-v0001.json       its metadata and validation report, human-readable
        lead-model-v0002.joblib / .json
        active.json                 {"version": "v0002", ...}: the model that scores

Pickles run code when loaded and scikit-learn only supports loading them with the version that
saved them (scikit-learn's "Model persistence" guide), so :func:`load_model` reads the JSON first
and refuses a file whose dvsync model format, scikit-learn version, checksum or feature schema does
not match, with a message saying what to do (usually: retrain). Only load model files you wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import sklearn

from core.private import private_dir, private_file
from jobs.errors import JobError
from jobs.leads.scoring.common import as_utc, utc_now
from jobs.leads.scoring.model import MODEL_FORMAT, LeadModel

__all__ = [
    "PROMOTION_RATIO",
    "ModelFileError",
    "Promotion",
    "active_version",
    "load_model",
    "promote_if_better",
    "save_model",
    "should_promote",
]

# A retrained model replaces the active one only if its validation AUC is at least 95% of the
# active model's, so a slightly worse retrain (noise) does not churn every score in the org.
PROMOTION_RATIO = 0.95
_NAME = re.compile(r"^lead-model-(v\d{4,})\.json$")
_ACTIVE = "active.json"


class ModelFileError(JobError):
    """A saved model cannot be used: missing, corrupt, or made for another schema or library."""


@dataclass(frozen=True)
class Promotion:
    """What :func:`promote_if_better` decided."""

    promoted: bool
    version: str
    previous_version: str | None
    candidate_auc: float
    active_auc: float | None
    reason: str


def _sklearn_series(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _write_atomic(path: Path, data: bytes) -> None:
    # Write beside the target and rename, so a crash never leaves half a model file behind.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _versions(directory: Path) -> list[str]:
    found = [m.group(1) for p in directory.glob("lead-model-v*.json") if (m := _NAME.match(p.name))]
    return sorted(found, key=lambda v: int(v[1:]))


def save_model(model: LeadModel, directory: str | Path, *, now: datetime | None = None) -> str:
    """Save ``model`` as the next version in ``directory`` (it does not become active).

    Returns:
        The version, e.g. ``"v0003"``; also set on ``model.version``.
    """
    directory = private_dir(directory)
    existing = _versions(directory)
    number = int(existing[-1][1:]) + 1 if existing else 1
    version = f"v{number:04d}"
    model.version = version
    model_path = directory / f"lead-model-{version}.joblib"
    tmp = directory / f".lead-model-{version}.joblib.tmp"
    private_file(tmp)
    joblib.dump(model, tmp)
    os.replace(tmp, model_path)
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    meta = {
        "format": MODEL_FORMAT,
        "version": version,
        "saved_at": as_utc(now or utc_now()).isoformat(),
        "sklearn": sklearn.__version__,
        "schema": model.schema,
        "schema_hash": model.schema_hash,
        "sha256": digest,
        "file": model_path.name,
        "report": model.report,
    }
    _write_atomic(directory / f"lead-model-{version}.json", json.dumps(meta, indent=2, default=str).encode())
    return version


def active_version(directory: str | Path) -> str | None:
    """Return the active model's version, or None when no model has been promoted yet."""
    path = Path(directory) / _ACTIVE
    if not path.exists():
        return None
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(
            f"{path} is not a valid active-model pointer ({exc.__class__.__name__})"
        ) from None


def _read_meta(directory: Path, version: str) -> dict[str, Any]:
    path = directory / f"lead-model-{version}.json"
    if not path.exists():
        known = ", ".join(_versions(directory)) or "none"
        raise ModelFileError(f"no lead-scoring model {version} in {directory} (saved versions: {known})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise ModelFileError(f"{path} is not valid JSON; retrain the model") from None


def load_model(
    directory: str | Path,
    version: str | None = None,
    *,
    features: Sequence[str] | Mapping[str, str] | None = None,
) -> LeadModel:
    """Load a saved model (the active one unless ``version`` is given), after checking it.

    Args:
        directory: the model directory.
        version: e.g. ``"v0002"``; default the active version.
        features: when given, the features the caller expects (columns, or column → kind); a
            model trained on other features is refused.

    Raises:
        ModelFileError: no such model; a model saved by another dvsync model format or another
            scikit-learn release; a file whose checksum does not match its metadata; or a feature
            schema different from ``features``.
    """
    directory = Path(directory)
    if version is None:
        version = active_version(directory)
        if version is None:
            raise ModelFileError(
                f"no active lead-scoring model in {directory}; train one (it needs 40 qualified and "
                "40 disqualified leads) or score with the rules"
            )
    meta = _read_meta(directory, version)
    if meta.get("format") != MODEL_FORMAT:
        raise ModelFileError(
            f"model {version} was saved in model format {meta.get('format')}, this dvsync reads format "
            f"{MODEL_FORMAT}; retrain the model"
        )
    saved_with = str(meta.get("sklearn", "?"))
    if _sklearn_series(saved_with) != _sklearn_series(sklearn.__version__):
        raise ModelFileError(
            f"model {version} was saved with scikit-learn {saved_with}, this is {sklearn.__version__}; "
            "scikit-learn models only load safely in the release that saved them: retrain the model"
        )
    model_path = directory / str(meta.get("file", f"lead-model-{version}.joblib"))
    if not model_path.exists():
        raise ModelFileError(f"the model file {model_path} is missing; retrain the model")
    if hashlib.sha256(model_path.read_bytes()).hexdigest() != meta.get("sha256"):
        raise ModelFileError(
            f"{model_path} does not match the checksum in its metadata (replaced or corrupted); "
            "refusing to load it: retrain the model"
        )
    model = joblib.load(model_path)
    if not isinstance(model, LeadModel) or model.schema_hash != meta.get("schema_hash"):
        raise ModelFileError(
            f"{model_path} does not hold the model its metadata describes; retrain the model"
        )
    if features is not None:
        wanted = (
            dict(features)
            if isinstance(features, Mapping)
            else {c: model.features.get(c, "?") for c in features}
        )
        if wanted != model.features:
            added = sorted(set(wanted) - set(model.features))
            removed = sorted(set(model.features) - set(wanted))
            changed = sorted(c for c in set(wanted) & set(model.features) if wanted[c] != model.features[c])
            parts = [
                f"{label} {cols}"
                for label, cols in (("new", added), ("dropped", removed), ("changed kind", changed))
                if cols
            ]
            raise ModelFileError(
                f"model {version} was trained on other features ({'; '.join(parts)}); retrain it on the "
                "current features"
            )
    model.version = version
    return model


def should_promote(candidate_auc: float, active_auc: float | None, ratio: float = PROMOTION_RATIO) -> bool:
    """Return True when a candidate with ``candidate_auc`` may replace the active model."""
    return active_auc is None or candidate_auc >= ratio * active_auc


def promote_if_better(
    model: LeadModel,
    directory: str | Path,
    *,
    ratio: float = PROMOTION_RATIO,
    now: datetime | None = None,
) -> Promotion:
    """Save ``model`` (if not saved yet) and make it active if it is good enough.

    The candidate becomes active when there is no active model, or when its validation AUC is at
    least ``ratio`` (95%) of the active model's. Every candidate is kept on disk with its report,
    promoted or not, so a decision can be reviewed.
    """
    directory = Path(directory)
    if model.version is None or not (directory / f"lead-model-{model.version}.json").exists():
        save_model(model, directory, now=now)
    assert model.version is not None
    candidate_auc = float(model.report["auc"])
    current = active_version(directory)
    active_auc = float(_read_meta(directory, current)["report"]["auc"]) if current else None
    if current == model.version:
        return Promotion(False, model.version, current, candidate_auc, active_auc, "already the active model")
    if not should_promote(candidate_auc, active_auc, ratio):
        reason = (
            f"kept {current}: the new model's validation AUC {candidate_auc:.3f} is below "
            f"{ratio:.0%} of the active model's {active_auc:.3f}"
        )
        return Promotion(False, model.version, current, candidate_auc, active_auc, reason)
    pointer = {
        "version": model.version,
        "auc": candidate_auc,
        "previous": current,
        "promoted_at": as_utc(now or utc_now()).isoformat(),
    }
    _write_atomic(directory / _ACTIVE, json.dumps(pointer, indent=2).encode())
    if active_auc is None:
        reason = "no active model yet"
    else:
        reason = (
            f"validation AUC {candidate_auc:.3f} is at least {ratio:.0%} of the active model's "
            f"{active_auc:.3f}"
        )
    return Promotion(True, model.version, current, candidate_auc, active_auc, reason)
