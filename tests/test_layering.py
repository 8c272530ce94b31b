"""The shape of the house: tfpose/ and tflite/ import downward only, and nothing imports itself in a circle.

Every import counts, at module level and inside functions (a lazy import still ties two modules together), read
from the source with ``ast``; nothing is imported. A module's layer is the first entry of ``LAYERS`` that names it
or a package above it; it may import modules of its own layer or of a lower one."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tfpose", "tflite")

# lowest first; within a layer, imports go either way (the cycle test still holds)
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("tfpose", "tfpose.errors", "tfpose._keras", "tfpose.skeleton", "tfpose.codec", "tfpose.metrics",
                    "tfpose.artifacts", "tfpose.detection", "tfpose.smoothing", "tfpose.visualize")),
    # the model registry is a directory of names and builders, below the config that checks names against it
    ("registry", ("tfpose.models.registry",)),
    ("config", ("tfpose.config",)),
    ("data", ("tfpose.data",)),
    ("evaluation", ("tfpose.evaluation", "tfpose.whole_image", "tfpose.report")),
    # the device side: numpy, OpenCV and a TFLite interpreter (tflite.convert, which needs TensorFlow, sits higher)
    ("device", ("tflite.runtime", "tflite.metadata", "tflite.benchmark", "tflite.macs", "tflite.adapters",
                "tflite.detector", "tflite.whole_images", "tflite.validate", "tflite.video_validate", "tflite")),
    ("models", ("tfpose.models", "tfpose.flops", "tfpose.keras_io", "tflite.convert")),
    ("distill", ("tfpose.distill",)),
    ("train", ("tfpose.train",)),
    ("compress", ("tfpose.finetune", "tfpose.prune", "tfpose.structured_prune", "tfpose.quantize")),
    ("export", ("tfpose.export", "tfpose.export_video")),
    ("stages", ("tfpose.pipeline", "tfpose.validation", "tfpose.predict", "tfpose.detect")),
    ("cli", ("tfpose.cli",)),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}

# Upward imports still to be removed; an entry that no longer happens fails the test too, so this list only shrinks.
KNOWN_UPWARD: set[tuple[str, str]] = set()

# Modules whose every import of TensorFlow is deliberate: none of the device layer may import one at module level.
TENSORFLOW = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = modules()


def owner(name: str) -> str | None:
    """The module of ours that ``name`` (a module, or a name inside one) lives in; None for a third-party one."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str, top_level_only: bool = False) -> list[tuple[str, int, bool]]:
    """(imported name, line, at module level) for every import statement of ``module``, ours and third-party."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                    base = base[:len(base) - child.level + 1]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module
                for a in child.names:
                    # ``from package import module`` imports the module; ``from module import name``, the module
                    target = f"{source}.{a.name}"
                    found.append((target if target in MODULES else source, child.lineno, top))
            if not (top_level_only and not inner):
                visit(child, inner)

    visit(tree, True)
    return [f for f in found if f[2] or not top_level_only]


def graph(top_level_only: bool = False) -> dict[str, dict[str, int]]:
    """module -> {module of ours it imports: line of the first such import}."""
    edges: dict[str, dict[str, int]] = defaultdict(dict)
    for module in MODULES:
        for name, line, _ in imports(module, top_level_only):
            target = owner(name)
            if target and target != module:
                edges[module].setdefault(target, line)
    return edges


def layer(module: str) -> str:
    best = None
    for name, members in LAYERS:
        for m in members:
            if (module == m or module.startswith(m + ".")) and (best is None or len(m) > len(best[1])):
                best = (name, m)
    assert best, f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}"
    return best[0]


def cycles(edges: dict[str, dict[str, int]], nodes=None) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as one circle through them."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(MODULES if nodes is None else nodes):
        if v not in index:
            connect(v)
    return found


def circle(component: list[str], edges) -> str:
    """One path around ``component``, with the line of each import: a -> b (line) -> ... -> a."""
    members, start = set(component), component[0]
    path, seen = [start], {start}
    while True:
        nxt = next((w for w in sorted(edges[path[-1]]) if w in members and (w == start or w not in seen)), None)
        if nxt is None or nxt == start:
            path.append(start)
            return " -> ".join(f"{a} (line {edges[a][b]})" for a, b in zip(path, path[1:])) + f" -> {start}"
        path.append(nxt)
        seen.add(nxt)


def test_every_module_has_a_layer():
    for module in MODULES:
        layer(module)


def test_no_import_circles():
    edges = graph()
    found = cycles(edges)
    assert not found, "import circles:\n" + "\n".join(circle(c, edges) for c in found)


def test_no_module_imports_one_above_it():
    upward = set()
    lines = []
    for module, targets in graph().items():
        for target, line in targets.items():
            if RANK[layer(target)] > RANK[layer(module)]:
                upward.add((module, target))
                if (module, target) not in KNOWN_UPWARD:
                    lines.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {module} ({layer(module)}) imports "
                                 f"{target} ({layer(target)})")
    assert not lines, "imports of a higher layer:\n" + "\n".join(lines)
    gone = KNOWN_UPWARD - upward
    assert not gone, f"no longer imported upward, remove from KNOWN_UPWARD: {sorted(gone)}"


def test_the_device_side_loads_no_tensorflow():
    """What the device layer imports at module level, followed through our modules, never reaches TensorFlow."""
    edges = graph(top_level_only=True)
    device = [m for m in MODULES if layer(m) in ("foundation", "device") and m != "tfpose._keras"]
    for module in device:
        reached, todo = set(), [module]
        while todo:
            m = todo.pop()
            if m in reached:
                continue
            reached.add(m)
            todo.extend(edges.get(m, {}))
        assert "tfpose._keras" not in reached, f"{module} reaches tfpose._keras at import"
        for m in reached:
            heavy = [n for n, _, _ in imports(m, top_level_only=True) if n.split(".")[0] in TENSORFLOW]
            assert not heavy, f"{module} imports {heavy} at module level through {m}"


def test_a_circle_is_found_and_named():
    edges = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    found = cycles(edges, ["a", "b", "c", "d"])
    assert found == [["a", "b", "c"]]
    assert circle(found[0], edges) == "a (line 1) -> b (line 2) -> c (line 3) -> a"
