"""Reading typed values out of the environment.

Settings are the only caller of the ``env_*`` readers; nothing else in the project
reads os.environ for configuration, so every knob is listed in one place
(config/settings.py). The URL parsers are pure and also check overridden settings.
"""
import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false).")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None


def env_float(name: str, default: float) -> float:
    value = env_str(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_str(name)
    if value is None:
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


def database_from_url(url: str, *, base_dir: Path) -> dict:
    """Translate a DATABASE_URL into a Django DATABASES entry.

    Supports ``sqlite:///relative/or/absolute/path`` and
    ``postgres://user:password@host:port/name?option=value``.
    """
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        raw_path = unquote(parts.path)
        # sqlite:///var/db.sqlite3 is relative to the repository, sqlite:////abs is absolute.
        path = Path(raw_path[1:]) if raw_path.startswith("/") else Path(raw_path)
        if not path.is_absolute():
            path = base_dir / path
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(path),
            "OPTIONS": {
                # The embedded mode runs web, worker and beat against one file:
                # WAL lets readers proceed during a write, IMMEDIATE takes the write
                # lock at BEGIN so two writers queue instead of failing with
                # "database is locked" halfway through a transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    if parts.scheme in {"postgres", "postgresql", "pgsql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "OPTIONS": dict(parse_qsl(parts.query)),
            # Ten minutes: a new connection's first queries pay PostgreSQL's catalog caches
            # (tens of ms on a loaded machine); at 60 s one of a server's 8 connections was
            # new every few seconds, and those requests were the Results page's p99.
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {parts.scheme!r} is not supported (use sqlite:/// or postgres://)."
    )


# S3's rules for new bucket names: 3-63 lowercase letters, digits, dots and hyphens.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def s3_location(name: str, url: str) -> tuple[str, str]:
    """``s3://bucket/optional/prefix`` -> ``(bucket, prefix)``, the prefix without outer slashes.

    ``name`` is the setting, for the message of the ImproperlyConfigured raised
    on anything else.
    """
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    if parts.scheme != "s3":
        problem = "the scheme must be s3://"
    elif not parts.netloc:
        problem = "there is no bucket name"
    elif not _BUCKET_NAME.fullmatch(parts.netloc):
        problem = f"{parts.netloc!r} is not a bucket name (3-63 lowercase letters, digits, dots and hyphens)"
    elif parts.query or parts.fragment:
        problem = "it has a query or fragment"
    elif prefix and any(segment in {"", ".", ".."} for segment in prefix.split("/")):
        problem = f"the prefix {prefix!r} has an empty, '.' or '..' segment"
    else:
        return parts.netloc, prefix
    raise ImproperlyConfigured(f"{name}={url!r}: {problem}. Use s3://bucket or s3://bucket/prefix.")
