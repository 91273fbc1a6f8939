"""Cache-aware routing: send a prompt to the free worker whose cache holds most of its work.

The server cannot see a remote worker's cache, but it knows what each worker ran. A prompt's
routing keys are the executor's node keys (engine/cache.py) computed without fingerprints: the
same checkpoint loader, text encoder or latent gives the same key whatever the node ids or the
seed, so a seed sweep finds the worker that already loaded its model. Each worker remembers the
keys of what it ran, most recent last, up to a bound; a worker that lost its cache forgets them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Sequence

from ..cache import node_key
from ..validation import ValidatedWorkflow

REMEMBERED_KEYS = 4096  # per worker: far more nodes than a cache of models holds


def routing_keys(workflow: ValidatedWorkflow) -> set[str]:
    """The node keys of a validated workflow's plan, fingerprints left out."""
    keys: dict[str, str] = {}
    for nid in workflow.order:
        inst = workflow.nodes[nid]
        keys[nid] = node_key(nid, inst.spec, inst.literals, inst.links, keys, None)
    return set(keys.values())


class WorkerMemory:
    """The routing keys of what one worker ran, least recently used first, bounded."""

    def __init__(self, limit: int = REMEMBERED_KEYS):
        self.limit = limit
        self._keys: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def overlap(self, keys: Iterable[str]) -> int:
        """How many of these keys the worker ran before."""
        return sum(key in self._keys for key in keys)

    def remember(self, keys: Iterable[str]) -> None:
        """Adds the keys of a prompt the worker ran, dropping the oldest beyond the limit."""
        for key in keys:
            self._keys[key] = None
            self._keys.move_to_end(key)
        while len(self._keys) > self.limit:
            self._keys.popitem(last=False)

    def forget(self) -> None:
        """The worker's cache is gone (freed, or a new process)."""
        self._keys.clear()


def choose(keys: set[str], memories: Sequence[WorkerMemory], runs: Sequence[int]) -> int:
    """The index of the worker to run a prompt: most keys in common, then fewest prompts run so far."""
    return max(range(len(memories)), key=lambda i: (memories[i].overlap(keys), -runs[i], -i))
