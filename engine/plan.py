"""The graph of a workflow's links, and what validation plans from it: cycles and the run order.

Validation builds this graph once per workflow; the order planned from it travels with the
validated workflow, so the executor never builds it again. Node ids are listed in natural
order everywhere ("2" before "10", numeric ids before other names).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import networkx as nx


def natural_key(node_id: str) -> tuple[tuple[int, int, str], ...]:
    """The sort key of a node id, part by part of a subgraph path ("12:5" before "12:10"):
    numeric parts by value, then the others by text."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in node_id.split(":"))


def link_graph(sources: Mapping[str, Iterable[str]]) -> nx.DiGraph:
    """A graph of every node id in `sources` (id -> the ids it takes inputs from), edges source -> node."""
    graph = nx.DiGraph()
    graph.add_nodes_from(sources)
    graph.add_edges_from((src, nid) for nid, srcs in sources.items() for src in srcs)
    return graph


def dependency_cycles(graph: nx.DiGraph) -> list[list[str]]:
    """The groups of nodes that depend on themselves, each in natural order."""
    cycles = [sorted(component, key=natural_key) for component in nx.strongly_connected_components(graph)
              if len(component) > 1 or any(graph.has_edge(n, n) for n in component)]
    return sorted(cycles, key=lambda cycle: natural_key(cycle[0]))


def execution_order(graph: nx.DiGraph, outputs: Iterable[str]) -> tuple[str, ...]:
    """The outputs and their ancestors, topologically sorted (ties broken by natural id order)."""
    needed = set(outputs)
    for output in list(needed):
        needed |= nx.ancestors(graph, output)
    return tuple(nx.lexicographical_topological_sort(graph.subgraph(needed), key=natural_key))
