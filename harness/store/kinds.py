"""The values the store's enumerated columns take: trial statuses, candidate kinds, families.

Free of SQLAlchemy and pandas, so that the CLI can offer them as choices
without importing either.
"""

__all__ = ["CANDIDATE_KINDS", "FAMILIES", "TRIAL_STATUSES"]

TRIAL_STATUSES = ("running", "complete", "failed", "pruned", "interrupted")
CANDIDATE_KINDS = ("candidate", "baseline")
FAMILIES = ("alternated", "RI", "IR", "other", "baseline")
