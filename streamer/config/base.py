"""The base of every config model, and the error a config that cannot be used raises."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    """A config that cannot be used; the message is meant for the person who wrote it."""


class ConfigModel(BaseModel):
    """Unknown keys are errors (a misspelt key must not be silently ignored), and so are bad assignments
    (the panel's reload and the CLI's overrides set fields after loading)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
