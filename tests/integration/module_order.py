"""The modules that share one deployment run last, in a given order, whatever their names
(called from a conftest's pytest_collection_modifyitems)."""

from __future__ import annotations


def last_in_order(items: list, order: tuple[str, ...]) -> None:
    """Sort items in place: the tests of the modules named in order go last, module by
    module in that order; every other test keeps its place, before them."""
    def rank(item) -> int:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return order.index(module) + 1 if module in order else 0

    items.sort(key=rank)  # stable
