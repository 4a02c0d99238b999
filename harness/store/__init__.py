"""The results store: SQLAlchemy models, schema migrations and `Store`.

    from harness.store import Store
    store = Store()                       # --db / $HARNESS_DB / sqlite:///results/harness.db
    study = store.ensure_study("demo")

Importing this package imports SQLAlchemy; command modules import it lazily.
"""

from harness.store.engine import DEFAULT_DB_URL, ENV_VAR, mask_url, resolve_db_url
from harness.store.migrations import SCHEMA_VERSION, migrate, schema_version
from harness.store.models import TRIAL_STATUSES
from harness.store.store import Store, config_hash, plain

__all__ = [
    "DEFAULT_DB_URL",
    "ENV_VAR",
    "SCHEMA_VERSION",
    "TRIAL_STATUSES",
    "Store",
    "config_hash",
    "mask_url",
    "migrate",
    "plain",
    "resolve_db_url",
    "schema_version",
]
