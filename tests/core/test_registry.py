"""Issue 28: each method is one object of the registry; nothing else compares method names."""

import ast
from pathlib import Path

import pytest

from invgui.core.methods.base import RequestError, RunRequest, method
from invgui.core.methods.registry import METHODS, window_methods

ROOT = Path(__file__).resolve().parents[2] / "invgui"
NAMES = set(METHODS)
# Where a method's own name may be written: its own modules, and the registry.
OWN = {"optimize": ("core/methods/optimize.py", "core/methods/optimize_params.py",
                    "core/methods/base.py"),           # base.DEFAULT_METHOD, a request's default
       "decoder": ("core/methods/decoder/", "core/methods/decoder_params.py"),
       "probe": ("core/methods/probe.py", "core/methods/probe_params.py"),
       "hybrid": ("core/methods/hybrid.py",)}


def _allowed(path: str, name: str) -> bool:
    return path == "core/methods/registry.py" or any(path.startswith(p) for p in OWN.get(name, ()))


def _names_in(node) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES:
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_names_in(e) for e in node.elts)) if node.elts else set()
    return set()


def method_name_uses(source: str, path: str) -> list[str]:
    """Comparisons with a method's name, method="NAME" arguments, and any "optimize" / "hybrid"
    literal (never a field name, unlike "decoder" and "probe") outside the allowed modules."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: set[str] = set()
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                names |= _names_in(operand)
        elif isinstance(node, ast.keyword) and node.arg == "method":
            names |= _names_in(node.value)
        elif isinstance(node, ast.Constant) and node.value in ("optimize", "hybrid"):
            names.add(node.value)
        for name in names:
            if not _allowed(path, name):
                found.append(f"{path}:{getattr(node, 'lineno', '?')}: {name!r}")
    return found


def test_no_method_name_is_compared_outside_the_methods_and_the_registry():
    found = []
    for f in sorted(ROOT.rglob("*.py")):
        path = f.relative_to(ROOT).as_posix()
        found += method_name_uses(f.read_text(encoding="utf-8"), path)
    assert found == [], "ask the registry (invgui.core.methods.registry) instead:\n" + "\n".join(found)


def test_the_check_finds_what_it_guards_against():
    """The check itself, on the string dispatch it replaced (it must not pass vacuously)."""
    old = ('def f(run, rec):\n'
           '    if run.method in ("optimize", "hybrid"):\n        pass\n'
           '    if rec.get("method") == "decoder":\n        pass\n'
           '    return Run.of(method="decoder")\n')
    assert len(set(method_name_uses(old, "ui/x.py"))) == 4
    assert method_name_uses('d = {"decoder": 1}\nx = r["decoder"]\n', "ui/x.py") == []      # a field name


def test_every_method_declares_what_the_rest_needs():
    for m in METHODS.values():
        assert m.name and m.title and m.word and ":" in m.entry and m.help
        assert (m.params_cls is None) == (m.presets is None)
        assert not m.optimises or m.terms, "an optimising method reports its loss terms"
    assert [m.name for m in window_methods()] == ["optimize", "decoder", "hybrid"]
    with pytest.raises(RequestError, match="use one of optimize, decoder, hybrid, probe"):
        method("nope")
    with pytest.raises(RequestError, match="method 'nope'"):
        RunRequest(method="nope").validate()


def strongly_connected(graph) -> list[list[str]]:
    """The import circles of a grimp graph: strongly connected components of more than one module
    (Tarjan's algorithm, iteratively: the package has a few hundred modules)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in graph.modules:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_circle_anywhere_in_invgui():
    """Issue 28: base → methods → registry → request → session/results/compare, and no circle at
    all (function-level imports count: they are edges all the same)."""
    import grimp

    graph = grimp.build_graph("invgui")
    assert strongly_connected(graph) == []
    graph.add_import(importer="invgui.core.methods.base", imported="invgui.core.request")   # the check can fail
    assert strongly_connected(graph) != []
