"""The house rules, from the code's own imports (ast, nothing imported): host imports run one
way (CLI -> tools -> areas -> shared layers), no import circle in host_tools/urelief, and the
firmware's `gnss/` never imports `alarm/`.

Every import counts, also one deferred into a function (an import moved there to dodge a circle
is still one); only imports under `if TYPE_CHECKING:` are left out (they never run). A package's
`__init__` importing its own submodules is not an arrow of design and is left out too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = ROOT / "host_tools" / "urelief"
FIRMWARE = ROOT / "firmware"

# Host layers, top to bottom. A module belongs to the layer of its longest matching prefix and
# may import its own layer or any layer below it, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("command line", ("urelief.cli", "urelief.__main__")),
    # Whole-system tools: the rig (firmware + emulated hardware + police server), the demo,
    # the fleet, the benchmarks, and the simulator's command group (which runs the fleet).
    # The simulator's SMS gateway is a police-server gateway on the simulator's SMS network.
    ("system tools", ("urelief.demo", "urelief.bench", "urelief.sim.rig", "urelief.sim.fleet",
                      "urelief.sim.soak", "urelief.sim.cli", "urelief.sim.sms_gateway")),
    ("provisioning", ("urelief.provisioning",)),  # the registry, and virtual boards from sim
    ("police server", ("urelief.server",)),
    ("registry", ("urelief.registry",)),
    # Device-side areas: the simulator (VM, shims, hardware models), board files, the wire
    # protocol and the power budget.
    ("device areas", ("urelief.sim", "urelief.boards", "urelief.power", "urelief.protocol",
                      "urelief.lint_firmware")),
    # Below every area: file locations, the firmware build, the rate limiter, the SMS PDU codec.
    ("shared", ("urelief", "urelief.paths", "urelief.build", "urelief.ratelimit", "urelief.sms")),
]

# Known arrows still to be removed, each by the engineer named; remove the entry when it lands.
ALLOWED_CIRCLES: set[frozenset[str]] = set()
ALLOWED_FIRMWARE_UP: set[tuple[str, str]] = set()


def modules(pkg_dir: Path, prefix: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py below pkg_dir (Alembic scripts aside)."""
    out = {}
    for f in sorted(pkg_dir.rglob("*.py")):
        if {"node_modules", "migrations"} & set(f.parts):
            continue
        parts = list(f.relative_to(pkg_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join([prefix, *parts] if prefix else parts)] = f
    return out


def _type_checking_only(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
            skip.update(id(x) for stmt in n.body for x in ast.walk(stmt))
    return skip


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules that `name` (defined in `path`) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def known_prefix(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found: set[str] = set()
    for n in ast.walk(tree):
        if id(n) in skip:
            continue
        if isinstance(n, ast.Import):
            targets = [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                pkg = package.split(".") if package else []
                pkg = pkg[: len(pkg) - (n.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            # `from pkg import mod` imports pkg.mod; `from mod import name` imports mod
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in n.names]
        else:
            continue
        for t in targets:
            m = known_prefix(t)
            if m and m != name and not (path.name == "__init__.py" and m.startswith(name + ".")):
                found.add(m)
    return found


def import_graph(pkg_dir: Path, prefix: str) -> dict[str, set[str]]:
    known = modules(pkg_dir, prefix)
    return {m: imports_of(m, f, known) for m, f in known.items()}


def circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, edges = work[-1]
            w = next(edges, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(frozenset(comp))
    return out


def layer_of(module: str) -> int:
    """Index into LAYERS (0 = top) of the longest prefix that matches `module`."""
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for m, deps in sorted(graph.items()):
        for d in sorted(deps):
            if layer_of(d) < layer_of(m):
                out.append(f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})")
    return out


# ------------------------------------------------------------------------------ the rules

def test_no_import_circle_in_host_tools():
    found = set(circles(import_graph(HOST, "urelief")))
    unexpected = found - ALLOWED_CIRCLES
    assert not unexpected, "import circles: " + "; ".join(
        " <-> ".join(sorted(c)) for c in unexpected)
    assert not ALLOWED_CIRCLES - found, (
        f"allowed circles that are gone (tighten ALLOWED_CIRCLES): {ALLOWED_CIRCLES - found}")


def test_host_imports_run_down_the_layers():
    arrows = upward_arrows(import_graph(HOST, "urelief"))
    assert not arrows, "imports of a layer above:\n" + "\n".join(arrows)


def test_firmware_gnss_never_imports_alarm():
    graph = import_graph(FIRMWARE, "")
    up = {(m, d) for m, deps in graph.items() if m.split(".")[0] == "gnss"
          for d in deps if d.split(".")[0] == "alarm"}
    assert not up - ALLOWED_FIRMWARE_UP, f"gnss/ imports alarm/: {sorted(up - ALLOWED_FIRMWARE_UP)}"
    assert not ALLOWED_FIRMWARE_UP - up, (
        f"allowed arrows that are gone (tighten ALLOWED_FIRMWARE_UP): {ALLOWED_FIRMWARE_UP - up}")


# ------------------------------------------------------------------------------ the checker

def test_the_checker_sees_circles_arrows_and_deferred_imports(tmp_path):
    """The rules are only as good as the graph: a deferred import, a relative import, a
    `from pkg import mod`, and a TYPE_CHECKING import, on a made-up package."""
    pkg = tmp_path / "urelief"
    (pkg / "server").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "server" / "__init__.py").write_text("from . import app\n")
    (pkg / "server" / "app.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from urelief import cli\n"
        "def f():\n    from .sms import x\n")
    (pkg / "server" / "sms.py").write_text("from urelief.server import app\nx = 1\n")
    (pkg / "cli.py").write_text("import urelief.server.app\n")
    (pkg / "paths.py").write_text("from urelief import cli\n")
    g = import_graph(pkg, "urelief")
    assert g["urelief.server"] == set()  # its own submodule
    assert g["urelief.server.app"] == {"urelief.server.sms"}  # deferred, relative; not TYPE_CHECKING
    assert g["urelief.server.sms"] == {"urelief.server.app"}
    assert circles(g) == [frozenset({"urelief.server.app", "urelief.server.sms"})]
    assert upward_arrows(g) == ["urelief.paths (shared) imports urelief.cli (command line)"]
