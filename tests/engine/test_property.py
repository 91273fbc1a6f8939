"""Random and mutated workflows: validation never raises, and nothing runs unless validation passed."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigmagraph.engine.executor import Executor
from sigmagraph.engine.validation import validate

from .test_executor import graph

values = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                   st.text(max_size=5), st.lists(st.one_of(st.text(max_size=2), st.integers(-2, 9)), max_size=3),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
node_ids = st.sampled_from(["1", "2", "3", "4", "5", "6", "7", "8", "x"])
class_types = st.sampled_from(["Constant", "Add", "Scale", "Show", "Zeros", "Sum", "Fail", "Nope", "", 3])


@st.composite
def mutated_workflows(draw):
    wf = copy.deepcopy(graph())
    for _ in range(draw(st.integers(1, 6))):
        nid = draw(node_ids)
        action = draw(st.integers(0, 5))
        node = wf.setdefault(nid, {"class_type": "Constant", "inputs": {}})
        if not isinstance(node, dict):
            continue
        if action == 0:
            node["class_type"] = draw(class_types)
        elif action == 1:
            node.setdefault("inputs", {})[draw(st.sampled_from(["a", "b", "x", "value", "offset", "factor", "mode",
                                                                  "label", "t", "size", "seed"]))] = draw(values)
        elif action == 2:
            node.setdefault("inputs", {})[draw(st.sampled_from(["a", "b", "x", "value"]))] = [draw(node_ids),
                                                                                           draw(st.integers(-1, 2))]
        elif action == 3:
            wf.pop(nid, None)
        elif action == 4:
            wf[nid] = draw(values)
        else:
            node.pop("inputs", None)
    return wf


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.one_of(mutated_workflows(), values))
def test_validator_and_executor_never_crash(registry, config, document):
    executor = Executor(registry, config)
    workflow = validate(document, registry, config)
    assert bool(workflow.nodes) == workflow.ok  # nodes only from a valid workflow
    if not workflow.ok:
        return
    events = []
    result = executor.run(workflow, on_event=lambda e, d: events.append(e))
    assert result.status in ("success", "error")
    assert sum(e in ("execution_success", "execution_error", "execution_interrupted") for e in events) == 1
