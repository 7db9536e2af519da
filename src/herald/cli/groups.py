"""Capability command groups of the ``herald`` CLI.

Each entry maps a command name to a module that defines ``app: typer.Typer``; a capability adds
its commands (``herald models ...``, ``herald datasets ...``) by adding one line here.
"""

from __future__ import annotations

CLI_GROUPS: tuple[tuple[str, str], ...] = (
    ("finetune", "herald.cli.training"),
    ("datasets", "herald.cli.datasets"),
    ("models", "herald.cli.registry"),
    ("runs", "herald.cli.runs"),
    ("chat", "herald.cli.serving"),
    ("rag", "herald.cli.rag"),
    ("eval", "herald.cli.evaluation"),
    ("monitors", "herald.cli.monitoring"),
    ("approvals", "herald.cli.approvals"),
    ("demo", "herald.cli.demo"),
    ("deploy", "herald.cli.deploy"),
    ("keys", "herald.cli.keys"),
    ("prompts", "herald.cli.prompts"),
)
