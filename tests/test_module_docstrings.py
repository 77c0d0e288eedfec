"""Every module of the product says, in the first line of its docstring, what it owns.

A new reader finds their way by these sentences (what a module owns, in one sentence), so a
module without one fails the suite. "The product" is every Python file of the repository
except the tests, migrations and what is not ours (the virtualenv, var/, the WordPress plugin).
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOT_THE_PRODUCT = {"tests", "var", "static", "wordpress-plugin", "node_modules", "artifacts"}
# Empty markers Django needs to discover what is inside; the modules inside own something.
DISCOVERY_PACKAGES = {"management", "commands", "templatetags"}


def product_modules() -> list[Path]:
    modules = []
    tops = [
        top
        for top in REPO.iterdir()
        if top.name not in NOT_THE_PRODUCT and not top.name.startswith(".")
    ]
    paths = [top for top in tops if top.suffix == ".py"]
    paths += [path for top in tops if top.is_dir() for path in top.rglob("*.py")]
    for path in sorted(paths):
        parts = path.relative_to(REPO).parts
        if any(part.startswith(".") for part in parts):
            continue
        if "migrations" in parts or "__pycache__" in parts or parts[0].endswith(".egg-info"):
            continue
        if (
            path.name == "__init__.py"
            and path.parent.name in DISCOVERY_PACKAGES
            and not path.read_text().strip()
        ):
            continue
        modules.append(path)
    return modules


def first_line_problem(path: Path) -> str | None:
    """None if the module's docstring opens with one sentence; otherwise what is wrong."""
    docstring = ast.get_docstring(ast.parse(path.read_text(), filename=str(path)))
    if not docstring or not docstring.strip():
        return "no module docstring"
    first_line = docstring.strip().splitlines()[0].strip()
    if len(first_line.split()) < 3:
        return f"first line is not a sentence: {first_line!r}"
    summary = docstring.strip().split("\n\n")[0]
    if not summary.rstrip().endswith((".", "?", ".)", ".`")):
        return f"first paragraph does not end a sentence: {summary[-60:]!r}"
    return None


def test_the_walk_finds_the_product():
    found = {path.relative_to(REPO).as_posix() for path in product_modules()}
    # One module of each kind the walk must see: an app, the engine, config, the simulator, the
    # benchmarks, the scripts, manage.py. No test and no migration.
    for expected in (
        "accounts/models.py",
        "syncjobs/engine/core.py",
        "config/settings.py",
        "wpsim/site.py",
        "bench/engine_sync.py",
        "scripts/demo.py",
        "manage.py",
        "syncjobs/__init__.py",
    ):
        assert expected in found
    assert not any(name.startswith("tests/") or "/migrations/" in name for name in found)


def test_every_product_module_says_what_it_owns():
    problems = []
    for path in product_modules():
        problem = first_line_problem(path)
        if problem:
            problems.append(f"{path.relative_to(REPO)}: {problem}")
    assert not problems, (
        "Each module's docstring must open with one sentence saying what the module owns:\n"
        + "\n".join(problems)
    )
