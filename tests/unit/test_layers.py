"""The package's imports only look down the layers, and no modules import each other.

The layers (README, "The pieces"): core <- components <- peft <- models <- architectures;
data needs only core; generation needs models; training needs models, peft and data;
finetuning needs training and generation; evaluation, alignment (RLHF) and serving sit on
it; cli sits on top. Every import counts,
including those inside functions, so a lazy import cannot hide an edge.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "legollm"

_BASE = {"core"}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "components": _BASE,
    "peft": _BASE | {"components"},
    "models": _BASE | {"components", "peft"},
    "architectures": _BASE | {"components", "models"},
    "data": _BASE,
    "generation": _BASE | {"components", "models"},
    "training": _BASE | {"components", "peft", "models", "architectures", "data"},
    "export": _BASE | {"components", "peft", "models"},
}
ALLOWED["finetuning"] = ALLOWED["training"] | {"training", "generation"}
ALLOWED["evaluation"] = ALLOWED["finetuning"] | {"finetuning"}
ALLOWED["alignment"] = ALLOWED["finetuning"] | {"finetuning"}
ALLOWED["serving"] = ALLOWED["finetuning"] | {"finetuning"}
# __init__: the version
ALLOWED["cli"] = set(ALLOWED) | {"finetuning", "evaluation", "alignment", "serving", "__init__"}
ALLOWED["__main__"] = {"cli"}
ALLOWED["__init__"] = set()
ALLOWED["_lm_eval_hook"] = set()  # imported at start-up: it must import nothing of ours


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("legollm", *path.relative_to(PACKAGE).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports (``from pkg import sub`` names pkg.sub)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_pkg else name.split(".")[:-1]
                    up = here[: len(here) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            edges[name].update(t for t in targets if t in modules and t != name)
    return edges


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_imports_only_look_down_the_layers():
    edges = _imports(_modules())
    upward = sorted(
        f"{a} -> {b}"
        for a, targets in edges.items()
        for b in targets
        if _layer(b) != _layer(a) and _layer(b) not in ALLOWED[_layer(a)]
    )
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_no_module_imports_cycle():
    edges = _imports(_modules())
    cycles = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
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
                cycles.append(sorted(component))

    for module in sorted(_modules()):
        if module not in index:
            visit(module)
    assert not cycles, "modules that import each other:\n" + "\n".join(map(str, cycles))


def test_every_package_is_placed_in_a_layer():
    packages = {_layer(m) for m in _modules()}
    assert packages <= set(ALLOWED), f"add {sorted(packages - set(ALLOWED))} to ALLOWED"
