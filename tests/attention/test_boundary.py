"""The library stays pure PyTorch: no web framework, no validation library, no app."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CORE_MODULES = (
    "__init__", "config", "device", "embedding", "errors",
    "functional", "model", "multi_head", "positional", "weights",
)  # fmt: skip
FORBIDDEN = {"app", "fastapi", "pydantic", "pydantic_settings", "starlette", "uvicorn"}

PROBE = """
import json, sys
import attention
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_importing_attention_pulls_in_no_web_or_validation_library() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    loaded = set(json.loads(completed.stdout))
    assert "attention" in loaded
    assert "torch" in loaded
    assert not loaded & FORBIDDEN


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("name", CORE_MODULES)
def test_core_module_imports_torch_and_the_standard_library_only(name: str) -> None:
    roots = _imported_roots(REPO_ROOT / "attention" / f"{name}.py")
    foreign = roots - set(sys.stdlib_module_names) - {"torch", "attention", "__future__"}
    assert not foreign, f"attention/{name}.py imports {sorted(foreign)}"
