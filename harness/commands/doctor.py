"""`harness doctor`: versions, device, threads, CUDA, database and cache, for bug reports."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from harness.commands.clean import add_cache_dir_arg
from harness.commands.trials import add_db_arg

# Distribution names, in the order printed; importlib.metadata reads them without importing.
PACKAGES = (
    "torch",
    "timm",
    "optuna",
    "fvcore",
    "sqlalchemy",
    "alembic",
    "pandas",
    "numpy",
    "plotly",
    "scipy",
    "tqdm",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="print versions, device, threads, CUDA, database and cache (paste into bug reports)",
        description=(
            "Print what a bug report needs: harness, Python and package versions, the device "
            "`--device auto` picks, CPU cores and torch's thread count, CUDA and cuDNN (version, "
            "devices), the results database (password masked) and whether it can be written "
            "(checked in a transaction that is rolled back, so nothing changes), and the data "
            "cache folder with its size. Nothing is created or migrated."
        ),
    )
    add_db_arg(parser)
    add_cache_dir_arg(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    import torch

    # The metadata drops the local tag that names the build (+cu130, +cpu).
    found["torch"] = torch.__version__
    return found


def cpu_info() -> dict[str, Any]:
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        # These change torch's default thread count; worth seeing when runs differ.
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
    }


def cuda_info() -> dict[str, Any]:
    import torch

    available = torch.cuda.is_available()
    devices = []
    if available:
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append(
                {
                    "index": index,
                    "name": props.name,
                    "memory_gib": round(props.total_memory / 2**30, 1),
                    "capability": f"{props.major}.{props.minor}",
                }
            )
    cudnn = torch.backends.cudnn
    return {
        "available": available,
        "built_with": torch.version.cuda,  # None: a CPU-only build of torch
        "devices": devices,
        "cudnn_available": bool(cudnn.is_available()),
        "cudnn_version": cudnn.version() if cudnn.is_available() else None,
        "cudnn_enabled": bool(cudnn.enabled),
    }


def database_info(url: str | None) -> dict[str, Any]:
    """The database's state, read without creating, migrating or changing anything."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from harness.errors import StoreError
    from harness.store import SCHEMA_VERSION, mask_url, resolve_db_url, schema_version
    from harness.store.engine import (
        create_store_engine,
        describe_error,
        explain_open_error,
        read_only_location,
        sqlite_path,
    )
    from harness.store.migrations import check_ours

    raw = resolve_db_url(url)
    info: dict[str, Any] = {"url": mask_url(raw), "path": None, "exists": None}
    info.update(schema_version=None, writable=None, problem=None)
    try:
        path = sqlite_path(raw)
    except (ArgumentError, ValueError):
        path = None
    if path is not None:
        info["path"] = str(path.resolve())  # a relative sqlite:/// URL follows the current folder
    if path is not None and not path.exists():
        info.update(exists=False, writable=_creatable(path))
        if not info["writable"]:
            info["problem"] = f"cannot create {path}: no write permission on its folder"
        return info
    try:
        # Read with a read-only engine; the write check's engine leaves the journal mode
        # alone (a writing Store would switch the file to WAL for good).
        reader = create_store_engine(raw, read_only=True)
    except StoreError as error:
        info["problem"] = str(error)
        return info
    info["exists"] = True
    try:
        with reader.connect() as connection:
            version = schema_version(connection)
            info["schema_version"] = version
            if version == 0:
                check_ours(connection, info["url"])
        if version > SCHEMA_VERSION:
            info["problem"] = f"schema {version} is newer than this harness ({SCHEMA_VERSION})"
        place = read_only_location(path) if path is not None else None
        if place is not None:
            info.update(writable=False, problem=place)
            return info
        _check_writable(raw, version)
        info["writable"] = True
    except SQLAlchemyError as error:
        info["writable"] = False
        info["problem"] = describe_error(error)
        try:  # "unable to open database file" on read-only media: say where and why
            explain_open_error(raw, error, info["url"], reading=True)
        except StoreError as explained:
            info["problem"] = str(explained)
    except StoreError as error:
        info["problem"] = str(error)
    finally:
        reader.dispose()
    return info


def _check_writable(url: str, version: int) -> None:
    """Take the write lock in a transaction that is rolled back (SQLite: BEGIN IMMEDIATE);
    on PostgreSQL an UPDATE of no row also checks the write privilege."""
    from sqlalchemy import false, update

    from harness.store.engine import WRITE_OPTION, create_store_engine
    from harness.store.models import Meta

    engine = create_store_engine(url, create=False, wal=False)
    try:
        writer = engine.execution_options(**{WRITE_OPTION: True})
        with writer.connect() as connection:
            transaction = connection.begin()  # SQLite: BEGIN IMMEDIATE takes the write lock
            try:
                if version > 0:
                    # Checks the write privilege on PostgreSQL; changes no row.
                    connection.execute(update(Meta).where(false()).values(value=Meta.value))
            finally:
                transaction.rollback()
    finally:
        engine.dispose()


def _creatable(path: Path) -> bool:
    """Whether `path` could be created: its nearest existing folder is writable."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK | os.X_OK)


def collect(db: str | None = None, cache_dir: str | None = None) -> dict[str, Any]:
    """Everything `harness doctor` prints, as plain JSON-able data."""
    from harness import __version__
    from harness.commands.clean import cache_usage
    from harness.errors import HarnessError
    from harness.measure import resolve_device

    try:
        device = str(resolve_device("auto"))
    except HarnessError as error:
        device = f"none ({error})"
    return {
        "harness": __version__,
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "platform": platform.platform(),
        },
        "packages": package_versions(),
        "device": device,
        "cpu": cpu_info(),
        "cuda": cuda_info(),
        "database": database_info(db),
        "cache": cache_usage(cache_dir).to_dict(),
    }


def format_report(info: dict[str, Any]) -> str:
    from harness.commands.clean import format_bytes

    py, cpu, cuda, db, cache = (info[k] for k in ("python", "cpu", "cuda", "database", "cache"))
    lines = [
        f"harness     {info['harness']}",
        f"python      {py['version']} ({py['implementation']}, {py['executable']})",
        f"platform    {py['platform']}",
    ]
    for name, version in info["packages"].items():
        lines.append(f"  {name:<12}{version or 'not installed'}")
    lines.append(f"device      {info['device']} (what --device auto picks)")
    usable = f", {cpu['usable_cores']} usable" if cpu["usable_cores"] != cpu["cores"] else ""
    env = ", ".join(f"{k}={v}" for k, v in cpu["env"].items() if v is not None)
    lines.append(
        f"cpu         {cpu['cores']} cores{usable}; torch uses {cpu['torch_threads']} threads "
        f"({cpu['torch_interop_threads']} inter-op)" + (f"; {env}" if env else "")
    )
    built = (
        f"torch built with CUDA {cuda['built_with']}" if cuda["built_with"] else "CPU-only torch"
    )
    if cuda["available"]:
        lines.append(f"cuda        available, {built}")
        for d in cuda["devices"]:
            lines.append(
                f"  cuda:{d['index']:<5}{d['name']}, {d['memory_gib']} GiB, "
                f"compute capability {d['capability']}"
            )
    else:
        lines.append(f"cuda        not available ({built})")
    cudnn = f"version {cuda['cudnn_version']}" if cuda["cudnn_available"] else "not available"
    lines.append(f"cudnn       {cudnn}" + ("" if cuda["cudnn_enabled"] else " (disabled)"))
    lines.append(f"database    {db['url']}" + (f"  ({db['path']})" if db["path"] else ""))
    if db["exists"] is False:
        state = "not created yet (the first train or run creates it)"
        state += ", folder writable" if db["writable"] else ", folder NOT writable"
    elif db["exists"]:
        state = f"schema {db['schema_version']}, "
        state += {True: "writable", False: "NOT writable", None: "writability unknown"}[
            db["writable"]
        ]
    else:
        state = "cannot be opened"
    lines.append(f"            {state}" + (f": {db['problem']}" if db["problem"] else ""))
    where = cache["folder"] + ("" if cache["exists"] else " (not created yet)")
    lines.append(
        f"data cache  {where}: {cache['entries']} entries, {format_bytes(cache['bytes'])}"
        " (harness clean)"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    info = collect(args.db, args.cache_dir)
    print(json.dumps(info, indent=2) if args.json else format_report(info))
    return 0
