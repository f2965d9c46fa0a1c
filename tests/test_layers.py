"""The layers of ARCHITECTURE.md: every project import points down (or within a layer), and the
library never imports argparse or matplotlib (command lines and plots live in llm_bounds_cli)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# lowest first; a module may import its own layer and the layers before it
LAYERS = ["llm_bounds.core", "llm_bounds.subspace", "llm_bounds.data", "llm_bounds.message", "llm_bounds.bound",
          "llm_bounds.evaluation", "llm_bounds.certificate", "llm_bounds.api", "llm_bounds_cli"]
# in no layer: the package's front door (lazy exports of llm_bounds.api) and `python -m llm_bounds`, a
# program that nothing imports and the one module of the package that may import the command lines
OUTSIDE_LAYERS = ("llm_bounds.__init__", "llm_bounds.__main__")


def layer_of(module: str) -> int | None:
    for i, name in reversed(list(enumerate(LAYERS))):
        if module == name or module.startswith(name + "."):
            return i
    return None


def imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def modules():
    for pkg in ("llm_bounds", "llm_bounds_cli"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield ".".join(path.relative_to(ROOT).with_suffix("").parts), path


def test_every_module_belongs_to_a_layer():
    assert [m for m, _ in modules() if layer_of(m) is None and m not in OUTSIDE_LAYERS] == []


def test_the_library_never_imports_the_command_lines():
    bad = [f"{m} imports {i}" for m, p in modules() if m.startswith("llm_bounds.") and m != "llm_bounds.__main__"
           for i in imports(p) if i.split(".")[0] == "llm_bounds_cli"]
    assert bad == []
    assert [m for m, p in modules() for i in imports(p) if i == "llm_bounds.__main__"] == []


def upward_imports(mods) -> list[str]:
    return [f"{m} imports {i}" for m, p in mods for i in imports(p)
            if layer_of(i) is not None and layer_of(m) is not None and layer_of(i) > layer_of(m)]


def test_imports_point_down_only():
    assert upward_imports(modules()) == []


def test_no_relative_imports_so_the_direction_is_visible():
    rel = [m for m, p in modules() for n in ast.walk(ast.parse(p.read_text()))
           if isinstance(n, ast.ImportFrom) and n.level > 0]
    assert rel == []


def test_library_never_imports_argparse_or_matplotlib():
    bad = [f"{m} imports {i}" for m, p in modules() if m.startswith("llm_bounds.")
           for i in imports(p) if i.split(".")[0] in ("argparse", "matplotlib")]
    assert bad == []


def test_bound_mathematics_needs_no_torch():
    bad = [f"{m} imports {i}" for m, p in modules() if m.startswith("llm_bounds.bound.")
           for i in imports(p) if i.split(".")[0] == "torch"]
    assert bad == []


def test_the_layer_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from llm_bounds.certificate.run import run\nimport llm_bounds_cli.bound\nfrom llm_bounds.core import errors\n")
    assert upward_imports([("llm_bounds.core.bad", bad)]) == [
        "llm_bounds.core.bad imports llm_bounds.certificate.run", "llm_bounds.core.bad imports llm_bounds_cli.bound"]


def test_no_module_imports_a_private_name_of_another():
    bad = [f"{m} imports {n.module}.{a.name}" for m, p in modules() for n in ast.walk(ast.parse(p.read_text()))
           if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("llm_bounds") and n.module != m
           for a in n.names if a.name.startswith("_")]
    assert bad == []


def test_project_imports_sit_at_the_top_of_each_module():
    """At most 3 function-local imports of project modules (the issue's limit), none today."""
    local = [f"{m}:{n.lineno}" for m, p in modules() for f in ast.walk(ast.parse(p.read_text()))
             if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)
             if isinstance(n, (ast.Import, ast.ImportFrom))
             and any(name.startswith("llm_bounds") for name in ([n.module or ""] if isinstance(n, ast.ImportFrom)
                                                                   else [a.name for a in n.names]))]
    assert local == []


def test_the_calculator_runs_without_torch():
    """scripts/calc.py needs only the bound mathematics: importing it must not load torch."""
    import subprocess
    import sys
    code = "import sys, llm_bounds_cli.calc; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
