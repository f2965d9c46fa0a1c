"""The layers of ARCHITECTURE.md: every project import points down (or within a layer), and the
library never imports argparse or matplotlib (command lines and plots live in llm_bounds_cli)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# lowest first; a module may import its own layer and the layers before it
LAYERS = ["llm_bounds.core", "llm_bounds.subspace", "llm_bounds.data", "llm_bounds.message", "llm_bounds.bound",
          "llm_bounds.evaluation", "llm_bounds.certificate", "llm_bounds_cli"]


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
    assert [m for m, _ in modules() if layer_of(m) is None and m not in ("llm_bounds.__init__",)] == []


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
