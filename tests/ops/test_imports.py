"""The ops modules import each other at the top of the file and downward only: no cycle,
and no import inside a function (the usual way to hide one)."""
import ast
import pathlib

import cnnjax.ops

OPS = pathlib.Path(cnnjax.ops.__file__).parent


def _ops_imports(tree: ast.Module) -> tuple[set[str], list[int]]:
    """``(modules of cnnjax.ops imported at module level, lines of nested cnnjax imports)``."""
    top, nested = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found = {n.rsplit(".", 1)[1] for n in names if n.startswith("cnnjax.ops.")
                 and (OPS / f"{n.rsplit('.', 1)[1]}.py").exists()}
        if any(n == "cnnjax" or n.startswith("cnnjax.") for n in names):
            if node not in tree.body:
                nested.append(node.lineno)
            top |= found
    return top, nested


def test_ops_modules_import_downward_at_module_level():
    graph = {}
    for path in sorted(OPS.glob("_*.py")):
        top, nested = _ops_imports(ast.parse(path.read_text()))
        assert not nested, f"{path.name} imports cnnjax inside a function at lines {nested}"
        graph[path.stem] = top - {path.stem}
    done, stack = set(), []

    def visit(name):
        assert name not in stack, f"import cycle: {' -> '.join(stack[stack.index(name):])}"
        if name in done:
            return
        stack.append(name)
        for dep in sorted(graph.get(name, ())):
            visit(dep)
        stack.pop()
        done.add(name)

    for name in graph:
        visit(name)
    assert graph["_conv"] >= {"_conv_impls", "_conv_geometry"}  # the walk did see imports
