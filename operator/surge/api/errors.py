"""Failures a user reads about: `reason` (CamelCase) for conditions and Events, `message` for people."""

from __future__ import annotations


class ReasonedError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
