"""Errors the library raises on purpose: the CLI shows them as one clear line.

Anything else that escapes a stage is a bug and is shown with a hint to rerun with --debug.
"""

from __future__ import annotations


class WebvidError(Exception):
    """An expected, user-facing failure (bad input, missing file, bad config)."""

    exit_code = 2


class ConfigError(WebvidError):
    """A recipe or a --set override is wrong: unknown key, wrong type, bad value."""


class InputError(WebvidError):
    """An input file or folder is missing, empty or in an unknown format."""


class QueryError(WebvidError):
    """`webvid query` could not run the SQL as asked."""


class DiskFullError(WebvidError):
    """A write failed because the disk (or quota) is full; the message names the file and free space."""


class MissingDependencyError(WebvidError):
    """A required external tool or package is missing; the message says how to install it."""
