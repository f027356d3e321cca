"""Where things live: repository root, data cache, feature cache, data mirror."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path:
    """The checkout's root (the folder holding ``pyproject.toml``), else the CWD."""
    env = os.environ.get("REPLICATE_ROOT")
    if env:
        return Path(env).resolve()
    for parent in [PACKAGE_DIR, *PACKAGE_DIR.parents]:
        if (parent / "pyproject.toml").exists() and (parent / "src" / "replicate").exists():
            return parent
    return Path.cwd()


def data_dir() -> Path:
    """Cache of downloaded / mirrored public data (``data/cache`` under the root).

    ``REPLICATE_DATA_DIR`` overrides it (tests use a temporary folder).
    """
    env = os.environ.get("REPLICATE_DATA_DIR")
    path = Path(env) if env else repo_root() / "data" / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def feature_cache_dir() -> Path:
    """Cache of extracted features, keyed on (image hash, mask hash, settings)."""
    env = os.environ.get("REPLICATE_FEATURE_CACHE")
    path = Path(env) if env else data_dir() / "features"
    path.mkdir(parents=True, exist_ok=True)
    return path


def mirror_dir() -> Path | None:
    """The local mirror laid out like ``../shared/data`` (``REPLICATE_DATA_MIRROR``), if set."""
    env = os.environ.get("REPLICATE_DATA_MIRROR")
    return Path(env).resolve() if env else None


def specs_dir() -> Path:
    return PACKAGE_DIR / "specs"


def params_dir() -> Path:
    return PACKAGE_DIR / "params"


def notebooks_dir() -> Path:
    """Chapter notebooks (``REPLICATE_NOTEBOOKS_DIR`` overrides, for tests)."""
    env = os.environ.get("REPLICATE_NOTEBOOKS_DIR")
    return Path(env) if env else repo_root() / "notebooks"
