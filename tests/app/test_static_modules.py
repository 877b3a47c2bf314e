"""The explorer's JavaScript modules (app/static/*.js) stay small and load without a build step.

The browser suite checks what they draw; these checks need no browser, so they run everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "app" / "static"
MAX_LINES = 300
MODULES = sorted(STATIC.glob("*.js"))
# a static import or re-export of a module of the page: import … from "./x.js" / export … from …
RELATIVE_IMPORT = re.compile(
    r"""^\s*(?:import|export)\b[^;]*?\bfrom\s+["'](\./[^"']+)["']""", re.MULTILINE | re.DOTALL
)


def test_the_page_has_javascript_modules() -> None:
    assert (STATIC / "explorer.js") in MODULES


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_no_module_is_over_the_line_limit(module: Path) -> None:
    lines = len(module.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, (
        f"{module.name} has {lines} lines (at most {MAX_LINES}): split it by responsibility"
    )


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_every_relative_import_names_a_module_that_exists(module: Path) -> None:
    # the browser loads these files as they are: a wrong name would only show as a blank page
    for target in RELATIVE_IMPORT.findall(module.read_text(encoding="utf-8")):
        assert (module.parent / target).is_file(), f"{module.name} imports missing {target}"
