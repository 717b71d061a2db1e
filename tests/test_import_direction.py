"""Dependencies point one way: training -> annotation -> alignweb, and training/ml stands alone.

Read from the source, not from ``sys.modules``: every import statement of every module counts,
the ones inside functions too (they run sooner or later, and hiding an import in a function
hides a cycle, it does not break it). Migrations are left out: they are frozen history.
"""

import ast
import itertools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("alignweb", "annotation", "training")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.relative_to(ROOT).parts:
                modules[module_name(path)] = path
    return modules


def imported_names(path: Path, module: str) -> list[tuple[str, int]]:
    """What each import statement in ``path`` names, with its line: ``import a.b`` names ``a.b``,
    ``from a import b`` names ``a.b`` (a module, or a name defined in ``a``)."""
    is_package = path.name == "__init__.py"
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return names


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {project module it imports: line}, each name resolved to the longest project
    module it starts with (``from training.services import runs`` is an edge to ``runs``,
    ``from training.models import TrainingRun`` one to ``training.models``)."""
    modules = project_modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges: dict[str, int] = {}
        for name, line in imported_names(path, module):
            target = name
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle as ``[m1, m2, ..., m1]``, or None (depth-first, white/grey/black)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, {})):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    steps = [f"{a} (line {graph[a][b]}) -> {b}" for a, b in itertools.pairwise(cycle)]
    return "import cycle:\n  " + "\n  ".join(steps)


def violations(prefix: str, forbidden) -> list[str]:
    found = []
    for module, path in project_modules().items():
        if module != prefix and not module.startswith(prefix + "."):
            continue
        for name, line in imported_names(path, module):
            if forbidden(name):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return sorted(set(found))


def test_annotation_never_imports_training():
    found = violations("annotation", lambda name: name == "training" or name.startswith("training."))
    assert found == []


def test_no_annotation_model_has_a_relation_to_a_training_model():
    """Not importing training is not enough: a relation named as "training.Model" couples the
    apps through Django. Reverse relations (training's own relations to annotation) are allowed."""
    from django.apps import apps

    found = [
        f"{model.__name__}.{field.name} -> {field.related_model._meta.label}"
        for model in apps.get_app_config("annotation").get_models()
        for field in model._meta.get_fields()
        if field.is_relation
        and not field.auto_created
        and field.related_model is not None
        and field.related_model._meta.app_label == "training"
    ]
    assert found == []


def test_annotation_migrations_do_not_depend_on_training():
    from django.db.migrations.loader import MigrationLoader

    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    annotation = [key for key in graph.leaf_nodes() if key[0] == "annotation"]
    assert annotation, "annotation has no migrations"
    needed = {key for leaf in annotation for key in graph.forwards_plan(leaf)}
    assert sorted(key for key in needed if key[0] == "training") == []


def test_alignweb_imports_neither_app():
    # Settings and root URLs name the apps' modules as strings, which Django resolves on its own.
    def forbidden(name: str) -> bool:
        return name.split(".")[0] in ("annotation", "training")

    assert violations("alignweb", forbidden) == []


def test_the_ml_core_imports_neither_django_nor_the_apps():
    # The one conversation parser and the one reading of boolean words are shared with the apps;
    # both are plain Python (checked below).
    shared = ("alignweb.conversations", "alignweb.booleans")

    def forbidden(name: str) -> bool:
        if name in shared or any(name.startswith(module + ".") for module in shared):
            return False
        top = name.split(".")[0]
        if top == "training":
            return not (name == "training.ml" or name.startswith("training.ml."))
        return top in ("django", "rest_framework", "celery", "annotation", "alignweb")

    assert violations("training.ml", forbidden) == []


def test_the_shared_conversation_parser_imports_nothing_of_the_project_or_a_framework():
    def forbidden(name: str) -> bool:
        project_or_framework = ("django", "rest_framework", "celery", "annotation", "alignweb", "training")
        return name.split(".")[0] in project_or_framework

    assert violations("alignweb.conversations", forbidden) == []
    assert violations("alignweb.booleans", forbidden) == []


def test_the_project_has_no_import_cycle():
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, describe(cycle, graph)


def test_the_checks_see_function_local_imports_and_name_the_cycle(tmp_path, monkeypatch):
    graph = {"a": {"b": 3}, "b": {"c": 7}, "c": {"a": 12}, "d": {"a": 1}}
    cycle = find_cycle(graph)
    assert cycle == ["a", "b", "c", "a"]
    assert "c (line 12) -> a" in describe(cycle, graph)

    source = tmp_path / "m.py"
    source.write_text("def f():\n    from training.models import TrainingRun\n")
    assert ("training.models.TrainingRun", 2) in imported_names(source, "annotation.m")


def test_the_graph_sees_the_known_edges():
    graph = import_graph()
    assert "annotation.models" in graph["training.services.runs"]
    # ``from training.services import execution, runs`` inside a task's body
    assert {"training.services.execution", "training.services.runs"} <= set(graph["training.tasks"])


def test_every_named_task_is_a_registered_task():
    """Services name the tasks they queue (``alignweb.named_tasks``); a typo would only show
    on a worker, as an unknown task."""
    from alignweb.celery import app

    named = []
    for path in project_modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "named_task":
                named.append(node.args[0].value)
    app.loader.import_default_modules()
    assert named, "no service names a task"
    assert sorted(set(named) - set(app.tasks)) == []
