"""The architecture's rules (docs/architecture.md), checked: what each package may import,
what the read side loads, module and function sizes, and that the README names every
command and deployment."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("jobsim", "jobsim_app", "storage", "tasks", "flows", "api_export")
EDGES = ("prefect", "prefect_dask", "pymongo", "bson", "storage", "tasks", "flows", "api_export", "jobsim_app")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 60


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", modules("jobsim"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_no_edge_package(path):
    assert not imported(path) & set(EDGES)


@pytest.mark.parametrize("package, forbidden", [
    ("storage", {"prefect", "tasks", "flows", "api_export", "jobsim_app", "faiss", "polars"}),
    ("api_export", {"prefect", "tasks", "flows", "jobsim_app", "faiss"}),
    ("tasks", {"flows", "api_export", "jobsim_app"}),
    ("flows", {"api_export", "jobsim_app", "pymongo", "bson"}),
])
def test_edge_packages_import_only_what_they_may(package, forbidden):
    offenders = {str(p.relative_to(ROOT)): sorted(imported(p) & forbidden) for p in modules(package)}
    assert not {k: v for k, v in offenders.items() if v}


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("statement", [
    "import api_export.similar", "import api_export.app", "import storage",
    "import storage.jobs, storage.job_reads, storage.embeddings, storage.state",
])
def test_the_read_side_and_storage_load_no_search_or_frames(statement):
    assert not loaded_after(statement) & {"faiss", "polars", "sklearn", "prefect"}


def test_the_core_loads_no_edge_package_at_run_time():
    names = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in modules("jobsim")]
    names = [n.removesuffix(".__init__") for n in names if not n.endswith("__main__")]
    assert not loaded_after("import " + ", ".join(names)) & {"prefect", "pymongo", "bson", "storage", "tasks", "flows"}


def oversized() -> list[str]:
    found = []
    for package in SHIPPED:
        for path in modules(package):
            text = path.read_text(encoding="utf-8")
            rel = str(path.relative_to(ROOT))
            if len(text.splitlines()) > MAX_MODULE_LINES:
                found.append(f"{rel}: {len(text.splitlines())} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        found.append(f"{rel}:{node.lineno} {node.name}(): {length} lines")
    return found


def test_no_module_over_300_lines_and_no_function_over_60():
    assert oversized() == []


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_cli_command_is_in_the_readme():
    from jobsim_app.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    commands = []
    for name, command in sub.choices.items():
        nested = [a for a in command._actions if a.__class__.__name__ == "_SubParsersAction"]
        commands += [f"jobsim {name} {n}" for n in nested[0].choices] if nested else [f"jobsim {name}"]
    missing = [c for c in commands if not re.search(re.escape(c) + r"\b", readme())]
    assert commands and not missing


def test_every_deployment_is_in_the_readme():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    names = [d["name"] for d in spec["deployments"]]
    assert len(names) >= 7 and [n for n in names if f"/{n}`" not in readme()] == []
