"""PromptQueue on its own: ordering, what an interrupt hits, work deferred until idle."""

from __future__ import annotations

import threading

from sigmagraph.engine.server.prompt_queue import PromptQueue
from sigmagraph.engine.validation import ValidatedWorkflow, ValidationReport

WORKFLOW = ValidatedWorkflow(ValidationReport(), outputs=("9",), order=("9",))


def put(queue: PromptQueue, prompt_id: str, **options):
    return queue.put(prompt_id, {}, {}, WORKFLOW, **options)


def test_order_numbers_front_and_ties():
    changes: list[int] = []
    queue = PromptQueue(on_change=changes.append)
    a, b = put(queue, "a"), put(queue, "b")
    front = put(queue, "front", front=True)
    tie = put(queue, "tie", number=1)  # same number as b: first come, first served
    assert (a.number, b.number, front.number, tie.number) == (0, 1, -2, 1)
    assert [item.prompt_id for item in queue.snapshot()[1]] == ["front", "a", "b", "tie"]
    taken = []
    for _ in range(4):
        taken.append(queue.take())
        queue.task_done(taken[-1])
    assert [item.prompt_id for item in taken] == ["front", "a", "b", "tie"]
    assert changes == [1, 2, 3, 4, 4, 3, 3, 2, 2, 1, 1, 0]  # a running prompt still counts as remaining


def test_interrupt_hits_only_running_prompts():
    queue = PromptQueue()
    put(queue, "first"), put(queue, "second")
    assert queue.running_ids() == []  # nothing running yet
    first = queue.take()
    assert queue.running_ids("second") == [] and queue.running_ids("first") == ["first"]
    second = queue.take()  # two workers: both run
    assert queue.running_ids() == ["first", "second"]
    queue.task_done(first)
    assert queue.running_ids() == ["second"] and queue.remaining() == 1
    queue.task_done(second)


def test_when_idle_waits_for_the_running_prompt():
    queue = PromptQueue()
    done: list[str] = []
    queue.when_idle(lambda: done.append("now"))
    assert done == ["now"]
    put(queue, "p")
    item = queue.take()
    queue.when_idle(lambda: done.append("later"))
    assert done == ["now"]
    queue.task_done(item)
    assert done == ["now", "later"]


def test_delete_clear_knows_and_close():
    queue = PromptQueue()
    for name in "abc":
        put(queue, name)
    running = queue.take()
    assert queue.delete(["a", "b", "missing"]) == 1 and queue.knows("a") and queue.knows("c")
    assert queue.clear() == 1 and not queue.knows("c") and queue.remaining() == 1
    queue.task_done(running)
    taker = threading.Thread(target=lambda: results.append(queue.take()))
    results: list = []
    taker.start()
    queue.close()
    taker.join(5)
    assert results == [None]
