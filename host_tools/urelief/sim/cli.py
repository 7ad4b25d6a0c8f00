"""`urelief sim …` commands."""

from urelief.cli import sim  # noqa: F401
