"""The results store: SQLAlchemy models, schema migrations and `Store`.

    from harness.store import Store
    store = Store()                       # --db / $HARNESS_DB / sqlite:///results/harness.db
    study = store.ensure_study("demo")

Modules: `engine` (URLs, engines, SQLite locking), `models` (tables), `kinds`
(status and kind values), `migrations`, `values` (Python values -> stored
JSON), `liveness` (who marks a dead worker's trial), `base` (opening,
transactions), `writes`, `reads`, `frames` (pandas), `store` (`Store`, all of
them in one class).

The names below load on first use, so that `harness.store.kinds` (the CLI's
`--status` choices) can be imported without SQLAlchemy or pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.store.engine import DEFAULT_DB_URL, ENV_VAR, mask_url, resolve_db_url
    from harness.store.kinds import TRIAL_STATUSES
    from harness.store.migrations import SCHEMA_VERSION, migrate, schema_version
    from harness.store.store import Store, config_hash, plain

_HOMES = {
    "DEFAULT_DB_URL": "engine",
    "ENV_VAR": "engine",
    "mask_url": "engine",
    "resolve_db_url": "engine",
    "TRIAL_STATUSES": "kinds",
    "SCHEMA_VERSION": "migrations",
    "migrate": "migrations",
    "schema_version": "migrations",
    "Store": "store",
    "config_hash": "store",
    "plain": "store",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
