"""Prompts that did not finish: resumed after a restart, re-queued once after a lost run, else reported.

A prompt whose run started but never finished (the server was killed, a remote worker died) runs
once more; if that second run is lost too, it ends as an `execution_error` naming the cause, so a
prompt that kills its worker cannot take the service down again and again.
"""

from __future__ import annotations

from typing import Callable

from ..validation import ValidatedWorkflow
from .history import History
from .prompt_queue import PromptQueue, QueueItem
from .worker import RunRecorder, error_payload

MAX_ATTEMPTS = 2  # the first run and one retry
LOST = "sigmagraph.RunLost"  # the exception_type of a prompt whose runs were all lost

Validate = Callable[[dict, list[str]], ValidatedWorkflow]


def retry_or_fail(item: QueueItem, cause: str, queue: PromptQueue, history: History,
                  recorder: RunRecorder, worker: str) -> bool:
    """Queues a prompt whose run was lost again, or records it as failed once it used its retry; whether requeued."""
    if item.attempts < MAX_ATTEMPTS:
        queue.resume(item)
        return True
    message = f"the prompt was lost twice: {cause}"
    result = recorder.failed(error_payload(item.prompt_id, LOST, message, []))
    recorder.finish(result, queue, history, worker)
    return False


def resume_stored(queue: PromptQueue, history: History, recorder: Callable[[QueueItem], RunRecorder],
                  validate: Validate) -> int:
    """Queues again the prompts a previous server left unfinished (validated anew); how many were resumed.

    One that no longer validates (a model file was removed) is recorded as failed with the report.
    """
    resumed = 0
    for stored in queue.store.prompts():
        number, prompt_id, prompt, extra_data, outputs = stored.item
        workflow = validate(prompt, outputs)
        item = QueueItem(number, prompt_id, prompt, extra_data, workflow, attempts=stored.attempts)
        if not workflow.ok:
            rec = recorder(item)
            message = f"the prompt no longer validates after a restart: {workflow.report.summary()}"
            rec.finish(rec.failed(error_payload(prompt_id, "sigmagraph.InvalidAfterRestart", message, [])),
                       queue, history, "")
        elif stored.attempts == 0:
            queue.resume(item)
            resumed += 1
        else:
            resumed += retry_or_fail(item, "the server stopped while running it", queue, history, recorder(item), "")
    return resumed
