"""Async nodes: awaited, started before other ready nodes, overlapping; sync nodes stay on the caller's thread."""

from __future__ import annotations

import asyncio
import threading

from .flow_pack import SEEN, TIMES


def sleepers(seconds: float = 0.3) -> dict:
    return {
        "1": {"class_type": "Constant", "inputs": {"value": 2.0}},
        "2": {"class_type": "Sleepy", "inputs": {"x": ["1", 0], "seconds": seconds}},
        "3": {"class_type": "Sleepy", "inputs": {"x": ["1", 0], "seconds": seconds}},
        "4": {"class_type": "Here", "inputs": {"x": ["1", 0]}},
        "5": {"class_type": "Add", "inputs": {"a": ["2", 0], "b": ["3", 0], "offset": 0}},
        "6": {"class_type": "Add", "inputs": {"a": ["5", 0], "b": ["4", 0], "offset": 0}},
        "7": {"class_type": "Show", "inputs": {"value": ["6", 0], "label": "x"}},
    }


def test_independent_async_nodes_overlap(flow_session):
    result = flow_session.run(sleepers())
    assert result.ok and result.ui_outputs["7"]["values"] == [6.0]
    (start2, end2), (start3, end3) = TIMES["2"], TIMES["3"]
    assert start2 < end3 and start3 < end2  # each started before the other finished


def test_sync_nodes_run_on_the_callers_thread(flow_session):
    flow_session.run(sleepers(0.0))
    assert SEEN == [("thread", threading.get_ident())]


def test_function_async_is_awaited_instead_of_the_blocking_function(flow_session):
    wf = {"1": {"class_type": "Constant", "inputs": {"value": 2.5}},
          "2": {"class_type": "NegateAsync", "inputs": {"x": ["1", 0]}},
          "3": {"class_type": "Show", "inputs": {"value": ["2", 0], "label": "x"}}}
    assert flow_session.run(wf).ui_outputs["3"]["values"] == [-2.5]


def test_a_run_started_inside_an_event_loop(flow_session):
    async def caller():
        return flow_session.run(sleepers(0.0))

    assert asyncio.run(caller()).ui_outputs["7"]["values"] == [6.0]


def test_interrupt_while_async_nodes_wait(flow_session):
    def on_event(event, data):
        if event == "executing" and data["node"] == "2":
            flow_session.interrupt.request()

    result = flow_session.run(sleepers(5.0), on_event=on_event)
    flow_session.interrupt.clear()
    assert result.status == "interrupted" and not TIMES  # cancelled before any finished sleeping
