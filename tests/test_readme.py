"""The README is a manual users follow: its settings table and commands must stay true."""

from __future__ import annotations

from attention.steps import steps_table
from scripts.settings_table import settings_table
from tests.support.server import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_readme_settings_table_matches_the_settings_class() -> None:
    assert settings_table() in README, "regenerate with: python scripts/settings_table.py"


def test_readme_shows_the_two_commands() -> None:
    assert "make serve" in README
    assert "make test" in README


def test_readme_step_table_is_the_step_registry() -> None:
    assert steps_table() in README, "regenerate from attention.steps.steps_table()"
