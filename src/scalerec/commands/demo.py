"""CLI command for the built-in demo of the whole chain (placeholder until the stages land)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the demo command to the main app."""
