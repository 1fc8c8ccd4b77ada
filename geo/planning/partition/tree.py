"""Rooted spanning trees given in preorder: subtree sizes, depths, lowest common ancestors."""

from __future__ import annotations


def subtree_sizes(order: list[int], parent: dict[int, int]) -> dict[int, int]:
    """Units in each unit's subtree, for a tree in preorder (so a subtree is a slice)."""
    size = dict.fromkeys(order, 1)
    for u in reversed(order[1:]):
        size[parent[u]] += size[u]
    return size


def depths(order: list[int], parent: dict[int, int]) -> dict[int, int]:
    """Depth of each unit in a tree given in preorder."""
    depth = {order[0]: 0}
    for u in order[1:]:
        depth[u] = depth[parent[u]] + 1
    return depth


def lca(a: int, b: int, parent: dict[int, int], depth: dict[int, int]) -> int:
    """Lowest common ancestor of two units in a rooted tree."""
    da, db = depth[a], depth[b]
    while da > db:
        a = parent[a]
        da -= 1
    while db > da:
        b = parent[b]
        db -= 1
    while a != b:
        a = parent[a]
        b = parent[b]
    return a
