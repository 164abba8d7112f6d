"""Dependencies point one way, and no app imports itself in a circle.

Layers, top to bottom: frontend -> training -> annotation -> config. A module may
import its own app and the layers below it, never above; imports inside
functions count too (a lazy import is still a dependency). ``config/urls.py`` is
the composition root that mounts every app's URLs, so it alone may look up.
"""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAYERS = ["config", "annotation", "training", "frontend"]  # bottom to top
COMPOSITION_ROOTS = {"config/urls.py"}


def modules(app: str):
    for path in sorted((REPO / app).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every project module ``path`` imports, at module level or inside a function."""
    found = set()
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in LAYERS}


@pytest.mark.parametrize("app", LAYERS)
def test_an_app_imports_only_itself_and_the_layers_below(app):
    allowed = set(LAYERS[: LAYERS.index(app) + 1])
    upward = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in modules(app)
        if path.relative_to(REPO).as_posix() not in COMPOSITION_ROOTS
        for name in sorted(imported_modules(path))
        if name.split(".")[0] not in allowed
    ]
    assert upward == [], "Dependencies must point frontend -> training -> annotation -> config:\n" + "\n".join(upward)


@pytest.mark.parametrize("app", ["annotation", "training"])
def test_no_circle_of_imports_inside_an_app(app):
    names = {module_name(path): path for path in modules(app)}
    # A package choosing among its own submodules (training.model_store picking a
    # backend) is composition, not a circle: edges from a package into itself are left out.
    graph = {
        name: {
            target for target in imported_modules(path)
            if target in names and target != name and not target.startswith(name + ".")
        }
        for name, path in names.items()
    }
    circle = _find_cycle(graph)
    assert circle is None, f"Import circle in {app}: {' -> '.join(circle)} (send tasks by name, pass a callback)"


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = "open", stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node], _ = "done", stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None
