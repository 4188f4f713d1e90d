"""The package's shape: no import circles (the layers themselves: the import-linter contract in make check)."""

from __future__ import annotations

import grimp


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph("impasto")
    circles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                circles.add(tuple(sorted({module, *back})))
    assert not circles, f"import circles: {sorted(circles)}"
