"""The import graph of the packages has no cycles and no import from a lower layer up.

Built with grimp (the graph import-linter uses), TYPE_CHECKING imports included. Three
checks, each a plain function of a grimp graph so the fixture tests below can prove it
fails on a throwaway package tree:

- `file_cycles`: strongly connected components of the module graph (two or more
  modules that import each other, directly or round a loop).
- `package_cycles`: for every package, its direct children (subpackages and modules)
  with an edge A -> B when anything in A imports anything in B; a strongly connected
  component there is a cycle between packages (e.g. registry.server <-> registry.drivers)
  even when no two files import each other. At the top, the units are the entries of
  the layer stack (so reconciler.sdk, below controllers, and reconciler.cli, the
  composition root above them, are separate units: reconciler is a namespace of
  layers, not one) and the other root packages.
- `layer_violations`: every `layers` contract of pyproject.toml's [tool.importlinter]
  (the order is written there once): a direct import from a layer to one above it, or
  between independent siblings (`a | b`). lint-imports checks the same contracts and
  indirect chains too; this test also says that every module of the root packages has
  a place in the stack (`UNLAYERED` lists the two that need none).
"""

from __future__ import annotations

import sys
import textwrap
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import grimp
import pytest

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
# Modules of the root packages that belong to no layer: the package's own __init__
# (it holds __version__ and imports nothing) and `python -m reconciler`.
UNLAYERED = frozenset({"reconciler", "reconciler.__main__"})

Graph = Mapping[str, Iterable[str]]


def _importlinter() -> dict[str, Any]:
    with PYPROJECT.open("rb") as f:
        config: dict[str, Any] = tomllib.load(f)["tool"]["importlinter"]
    return config


def root_packages() -> tuple[str, ...]:
    return tuple(_importlinter()["root_packages"])


def layers_contracts() -> list[dict[str, Any]]:
    return [c for c in _importlinter()["contracts"] if c["type"] == "layers"]


def stack() -> dict[str, Any]:
    """The top-level layers contract (the one without containers)."""
    found = [c for c in layers_contracts() if not c.get("containers")]
    assert len(found) == 1, "pyproject.toml needs exactly one container-less layers contract"
    return found[0]


def stack_units() -> list[str]:
    return [name for row in _layer_names(stack()) for name in row]


def edges_of(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def _sccs(nodes: Iterable[str], edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of two or more nodes (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack_: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(edges.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack_.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack_.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(edges.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack_.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def file_cycles(edges: Graph) -> list[list[str]]:
    """Groups of modules that import each other round a loop."""
    return _sccs(edges, {m: set(ws) for m, ws in edges.items()})


def _layer_names(contract: Mapping[str, Any]) -> list[list[str]]:
    """Each layer's sibling module names (full names: containers prefixed)."""
    containers = contract.get("containers") or [""]
    rows: list[list[str]] = []
    for container in containers:
        for layer in contract["layers"]:
            names = [n.strip() for n in layer.replace(":", "|").split("|")]
            rows.append([f"{container}.{n}" if container else n for n in names])
    return rows


def _owner(module: str, names: Iterable[str]) -> str | None:
    """The longest of `names` that is `module` or a package containing it."""
    best = None
    for name in names:
        if (module == name or module.startswith(name + ".")) and (
            best is None or len(name) > len(best)
        ):
            best = name
    return best


def package_cycles(edges: Graph, top_units: Iterable[str] = ()) -> list[tuple[str, list[str]]]:
    """(package, its children that import each other round a loop), at every level.

    The top level ("" in the result) groups modules by `top_units` (layer entries)
    where one contains them, else by their root package; a module of a root package
    that is split into such units, but in none of them, is a unit of its own.
    """
    modules = set(edges)
    top = list(top_units)
    split = {unit.split(".")[0] for unit in top if "." in unit}
    found: list[tuple[str, list[str]]] = []

    def unit_at_top(module: str) -> str:
        root = module.split(".")[0]
        return _owner(module, top) or (module if root in split else root)

    packages = {m.rsplit(".", 1)[0] for m in modules if "." in m}
    levels: dict[str, dict[str, set[str]]] = {"": defaultdict(set)}
    for package in packages:
        levels[package] = defaultdict(set)
    for importer, imported in ((a, b) for a, bs in edges.items() for b in bs):
        ua, ub = unit_at_top(importer), unit_at_top(imported)
        if ua != ub:
            levels[""][ua].add(ub)
        for package in packages:
            prefix = package + "."
            if importer.startswith(prefix) and imported.startswith(prefix):
                ca = prefix + importer[len(prefix) :].split(".")[0]
                cb = prefix + imported[len(prefix) :].split(".")[0]
                if ca != cb:
                    levels[package][ca].add(cb)
    for package in sorted(levels):
        children = levels[package]
        nodes = set(children) | {c for cs in children.values() for c in cs}
        found.extend((package, component) for component in _sccs(nodes, children))
    return found


def layer_violations(edges: Graph, contracts: Iterable[Mapping[str, Any]]) -> list[str]:
    """Direct imports that go up a layer, or across independent siblings."""
    problems: list[str] = []
    for contract in contracts:
        rows = _layer_names(contract)
        containers = contract.get("containers") or [""]
        per = len(rows) // len(containers)
        place: dict[str, tuple[int, int, bool]] = {}  # name -> (container, depth, independent)
        layers = contract["layers"]
        for i, row in enumerate(rows):
            independent = "|" in layers[i % per]
            for name in row:
                place[name] = (i // per, i % per, independent)
        for importer, imported in ((a, b) for a, bs in edges.items() for b in bs):
            oa, ob = _owner(importer, place), _owner(imported, place)
            if oa is None or ob is None or oa == ob:
                continue
            (ca, da, ind), (cb, db, _) = place[oa], place[ob]
            if ca != cb:
                continue
            if db < da:
                problems.append(f"{importer} -> {imported}: {oa} is below {ob}")
            elif db == da and ind:
                problems.append(f"{importer} -> {imported}: {oa} and {ob} are independent")
    return sorted(problems)


def unlayered(edges: Graph, contract: Mapping[str, Any]) -> list[str]:
    names = [n for row in _layer_names(contract) for n in row]
    return sorted(m for m in edges if _owner(m, names) is None and m not in UNLAYERED)


# -- the real packages --


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return edges_of(grimp.build_graph(*root_packages(), cache_dir=None))


def test_no_import_cycle_between_files(edges: dict[str, set[str]]) -> None:
    cycles = file_cycles(edges)
    assert not cycles, "modules importing each other:\n" + "\n".join(map(" <-> ".join, cycles))


def test_no_import_cycle_between_packages_at_any_level(edges: dict[str, set[str]]) -> None:
    cycles = package_cycles(edges, stack_units())
    assert not cycles, "packages importing each other:\n" + "\n".join(
        f"in {package or '(top level)'}: {' <-> '.join(members)}" for package, members in cycles
    )


def test_no_import_from_a_lower_layer_to_a_higher_one(edges: dict[str, set[str]]) -> None:
    problems = layer_violations(edges, layers_contracts())
    assert not problems, "imports against the layers of pyproject.toml:\n" + "\n".join(problems)


def test_every_module_has_a_layer(edges: dict[str, set[str]]) -> None:
    stray = unlayered(edges, stack())
    assert not stray, f"modules in no layer of pyproject.toml's stack: {stray}"


def test_the_layer_stack_is_the_one_written_in_pyproject() -> None:
    # The order other docs (ARCHITECTURE.md) describe; a change here is a design change.
    assert stack()["layers"] == [
        "reconciler.cli",
        "reconciler.daemon",
        "controllers | reconciler.engine | sandbox",
        "reconciler.client | reconciler.daemon_client | reconciler.render | reconciler.config"
        " | registry | runtime",
        "reconciler.sdk",
        "specs",
        "contract",
    ]


# -- the checks fail when they should: a throwaway package tree --


def _tree(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for directory in {p.parent for p in root.rglob("*.py")}:
        (directory / "__init__.py").touch()


def _toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: Mapping[str, str]) -> Graph:
    _tree(tmp_path, files)
    monkeypatch.syspath_prepend(str(tmp_path))
    names = sorted({rel.split("/")[0] for rel in files})
    graph = grimp.build_graph(*names, cache_dir=None)
    for name in names:  # leave no trace for later tests
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]
    return edges_of(graph)


TOY_LAYERS = [{"type": "layers", "layers": ["toyhigh", "toymid_a | toymid_b", "toylow"]}]


def test_checker_reports_a_file_cycle_including_type_checking_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edges = _toy(
        tmp_path,
        monkeypatch,
        {
            "toycyc/a.py": "import toycyc.b\n",
            "toycyc/b.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from toycyc import c
                """,
            "toycyc/c.py": "from toycyc import a\n",
            "toycyc/d.py": "from toycyc import a\n",
        },
    )
    assert file_cycles(edges) == [["toycyc.a", "toycyc.b", "toycyc.c"]]


def test_checker_reports_a_package_cycle_without_a_file_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edges = _toy(
        tmp_path,
        monkeypatch,
        {
            "toypkg/server/x.py": "import toypkg.drivers.y\n",
            "toypkg/drivers/y.py": "X = 1\n",
            "toypkg/drivers/z.py": "import toypkg.server.w\n",
            "toypkg/server/w.py": "W = 1\n",
            "toypkg/core/base.py": "B = 1\n",
            "toyother/m.py": "import toypkg.core.base\n",
        },
    )
    assert file_cycles(edges) == []
    assert package_cycles(edges) == [("toypkg", ["toypkg.drivers", "toypkg.server"])]


def test_checker_reports_a_cycle_between_top_level_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edges = _toy(
        tmp_path,
        monkeypatch,
        {
            "toyup/a.py": "import toydown.b\n",
            "toydown/b.py": "X = 1\n",
            "toydown/c.py": "import toyup\n",
        },
    )
    assert package_cycles(edges) == [("", ["toydown", "toyup"])]
    # A package split into layers is not one unit: toyup.a and toyup (the __init__) are.
    assert package_cycles(edges, ["toyup.a"]) == []


def test_checker_reports_imports_up_a_layer_and_across_independent_siblings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edges = _toy(
        tmp_path,
        monkeypatch,
        {
            "toyhigh/top.py": "import toymid_a.a\nimport toylow.low\n",
            "toymid_a/a.py": "import toylow.low\nimport toymid_b.b\n",
            "toymid_b/b.py": "X = 1\n",
            "toylow/low.py": "import toyhigh.top\n",
            "toystray/s.py": "X = 1\n",
        },
    )
    assert layer_violations(edges, TOY_LAYERS) == [
        "toylow.low -> toyhigh.top: toylow is below toyhigh",
        "toymid_a.a -> toymid_b.b: toymid_a and toymid_b are independent",
    ]
    assert unlayered(edges, TOY_LAYERS[0]) == ["toystray", "toystray.s"]
    assert file_cycles(edges) == [["toyhigh.top", "toylow.low", "toymid_a.a"]]


def test_checker_reads_containers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edges = _toy(
        tmp_path,
        monkeypatch,
        {
            "toyreg/core/t.py": "import toyreg.handlers.h\n",
            "toyreg/handlers/h.py": "import toyreg.core.t\n",
        },
    )
    contracts = [{"type": "layers", "containers": ["toyreg"], "layers": ["handlers", "core"]}]
    assert layer_violations(edges, contracts) == [
        "toyreg.core.t -> toyreg.handlers.h: toyreg.core is below toyreg.handlers"
    ]
