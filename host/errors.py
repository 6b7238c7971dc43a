"""Errors the host raises: one base, subclasses (in their own modules) carry the fields they are about."""

from __future__ import annotations

__all__ = ["EngineError"]


class EngineError(Exception):
    """Base of every error the host raises on purpose; the message names the thing and the rule."""
