"""A tiny test runner for MicroPython: runs the pytest-style files in tests/core unchanged.

run.mjs loads this into the WebAssembly MicroPython and calls main(). It stays inside the
MicroPython subset (no os.path, no inspect, no traceback module) and prints plain lines;
the last line is the summary `N passed, N failed[, N skipped]` that run.mjs and
tests/test_micropython.py rely on.
"""

import gc
import os
import sys

from _support import SkipTest  # the same class the tests raise


def _definition_order(path):
    # MicroPython's dir() follows hash order; read the source so tests run top to bottom,
    # as under pytest. Returns {name: line number}.
    order = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.startswith("def test"):
                order[line[4:].split("(", 1)[0].strip()] = n
    return order


def _tests_of(mod, path):
    order = _definition_order(path)
    found = []
    for name in dir(mod):
        obj = getattr(mod, name)
        # plain functions/closures only: pytest-style classes are not supported here
        if name.startswith("test") and callable(obj) and not isinstance(obj, type):
            found.append((order.get(name, 1 << 30), name, obj))
    found.sort()
    return [(name, obj) for _, name, obj in found]


def _fail(label, exc):
    print("FAILED " + label)
    sys.print_exception(exc)  # to stdout, so failures and summary stay in order


def main(core_dir, selected=(), verbose=False):
    """Run test modules in core_dir; selected items are `module` or `module::function`."""
    wanted = {}
    for item in selected:
        item = item.replace("\\", "/").rsplit("/", 1)[-1]
        mod, _, fn = item.partition("::")
        if mod.endswith(".py"):
            mod = mod[:-3]
        wanted.setdefault(mod, set())
        if fn:
            wanted[mod].add(fn)
    files = os.listdir(core_dir)
    names = sorted(n[:-3] for n in files if n.startswith("test_") and n.endswith(".py"))
    for mod in wanted:
        if mod not in names:
            print("ERROR no test module %s in %s" % (mod, core_dir))
            return 0, 0, 0  # run.mjs: "no tests ran"
    if wanted:
        names = [n for n in names if n in wanted]

    passed = failed = skipped = 0
    for modname in names:
        try:
            mod = __import__(modname)
        except SkipTest as e:
            skipped += 1
            print("SKIPPED %s: %s" % (modname, e))
            continue
        except Exception as e:  # an import error fails the module, the run goes on
            failed += 1
            _fail(modname + " (import)", e)
            continue
        for name, fn in _tests_of(mod, core_dir + "/" + modname + ".py"):
            if wanted.get(modname) and name not in wanted[modname]:
                continue
            label = modname + "::" + name
            try:
                fn()
            except SkipTest as e:
                skipped += 1
                print("SKIPPED %s: %s" % (label, e))
                continue
            except Exception as e:  # AssertionError and anything else a test raises
                failed += 1
                _fail(label, e)
                continue
            passed += 1
            if verbose:
                print("PASSED " + label)
        sys.modules.pop(modname, None)  # drop it before the next module: keeps the heap small
        gc.collect()

    summary = "%d passed, %d failed" % (passed, failed)
    if skipped:
        summary += ", %d skipped" % skipped
    print(summary)
    return passed, failed, skipped
