"""Print the README's settings table from app.serving.settings.Settings, so the two cannot drift.

`python scripts/settings_table.py` prints it; tests/test_readme.py checks the README holds it.
"""

from __future__ import annotations

from app.serving.settings import Settings


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, tuple):
            default = ",".join(default) if default else "(empty)"
        rows.append(f"| `ATTENTION_{name.upper()}` | `{default}` | {field.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
