"""Imports run one way (docs/architecture.md, Layers): site <- call <- switch <- shell, sip beneath
switch, text and compat beneath everything, and no cycles among modules.

Only module-level imports count (those run when the module loads); an import inside a function
is a deliberate late binding (bundle.stored_row's host-only hashing, for one). CPython only: it
reads the sources with ast.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "firmware"
PKG = ROOT / "zongji"

LEAVES = ("text", "compat")
MAY_IMPORT = {
    "site": ("site",) + LEAVES,
    "call": ("call", "site") + LEAVES,
    "sip": ("sip",) + LEAVES,
    "switch": ("switch", "sip", "call", "site") + LEAVES,
    # site: the device loads its bundle (shell/sitefile.py); media, call: a shell builds the
    # attendant's media (media/hub.py) and opens its prompt files (call/prompts.py names them)
    "shell": ("shell", "switch", "site", "media", "call", "admin") + LEAVES,
    # the admin protocol: its failure budget is the switch's token-bucket table (guard, seconds)
    "admin": ("admin", "switch") + LEAVES,
    "media": ("media", "site", "call", "sip") + LEAVES,
    "line": ("line", "site", "call", "sip") + LEAVES,
    "text": (),
    "compat": (),
    "": (),  # zongji/__init__.py
}


def _modules():
    """{'zongji.sip.message': path, ...} for every firmware module."""
    found = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _top_level_imports(tree):
    """Import nodes that run at module load: the body, and try/if blocks in it, not functions."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.Try):
            todo.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                todo.extend(handler.body)
        elif isinstance(node, ast.If):
            todo.extend(node.body + node.orelse)


def _targets(node):
    """The zongji modules an import node loads (a package's module when it names one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "zongji"]
    if node.level or not node.module or node.module.split(".")[0] != "zongji":
        return []
    out = []
    for a in node.names:
        sub = node.module + "." + a.name
        out.append(sub if sub in MODULES else node.module)
    return out


def _layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _graph():
    graph = {}
    where = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[module] = []
        for node in _top_level_imports(tree):
            for target in _targets(node):
                graph[module].append(target)
                where[(module, target)] = "%s:%d" % (path.relative_to(ROOT.parent), node.lineno)
    return graph, where


def test_every_layer_is_known():
    assert {_layer(m) for m in MODULES} <= set(MAY_IMPORT), sorted({_layer(m) for m in MODULES})


def test_imports_run_one_way():
    graph, where = _graph()
    bad = []
    for module, targets in sorted(graph.items()):
        allowed = MAY_IMPORT[_layer(module)]
        for target in targets:
            if target not in MODULES:
                bad.append("%s: %s imports %s, which does not exist" % (where[(module, target)], module, target))
            elif _layer(target) not in allowed and target != "zongji":
                bad.append(
                    "%s: %s imports %s (%s may import only %s)"
                    % (
                        where[(module, target)],
                        module,
                        target,
                        _layer(module) or "zongji",
                        ", ".join(allowed) or "nothing",
                    )
                )
    assert not bad, "upward or sideways imports:\n  " + "\n  ".join(bad)


def test_no_import_cycles():
    graph, where = _graph()
    state = {}  # module -> 1 on the current path, 2 done
    cycles = []

    def visit(module, path):
        state[module] = 1
        for target in graph.get(module, ()):
            if target == module or target not in graph:
                continue
            if state.get(target) == 1:
                loop = path[path.index(target) :] + [target]
                cycles.append(" -> ".join(loop) + "  (%s)" % where[(module, target)])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n  " + "\n  ".join(cycles)


def test_the_checker_names_an_upward_import():
    # the rules above catch what they are for: a site module importing the switch
    node = ast.parse("from zongji.switch.switch import Switch\nfrom zongji.site import model\n")
    targets = [t for n in _top_level_imports(node) for t in _targets(n)]
    assert targets == ["zongji.switch.switch", "zongji.site.model"]
    assert _layer(targets[0]) not in MAY_IMPORT["site"] and _layer(targets[1]) in MAY_IMPORT["site"]
    late = ast.parse("def f():\n    from zongji.switch import switch\n")
    assert list(_top_level_imports(late)) == []
