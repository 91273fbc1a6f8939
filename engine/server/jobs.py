"""GET /api/jobs and /api/jobs/{id}: ComfyUI's job listing over the queue and the history.

A job is one prompt seen the same way whatever its state: pending or in progress (from the
queue), completed or failed (from the history), with its timings, its error, how many outputs it
made and the first one a front end can preview.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..events import EXECUTION_ERROR, EXECUTION_INTERRUPTED, EXECUTION_START, TERMINAL_EVENTS
from .errors import ApiError, json_response, parse_query
from .models import JobsQuery
from .prompt_queue import QueueItem
from .state import STATE

PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED = "pending", "in_progress", "completed", "failed", "cancelled"
PREVIEWABLE = {"images", "video", "audio"}
MODEL_EXTENSIONS = (".obj", ".fbx", ".gltf", ".glb")  # 3D files the front end previews too


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields that have a value (ComfyUI leaves absent ones out rather than sending null)."""
    return {key: value for key, value in fields.items() if value is not None}


def _origin(extra_data: dict[str, Any]) -> dict[str, Any]:
    """`create_time` and `workflow_id` (the editor's id of the workflow, when it sent one)."""
    workflow = (extra_data.get("extra_pnginfo") or {}).get("workflow") or {}
    return {"create_time": extra_data.get("create_time"),
            "workflow_id": workflow.get("id") if isinstance(workflow, dict) else None}


def queued_job(item: QueueItem, status: str) -> dict[str, Any]:
    """A pending or running prompt as a job."""
    return _present({"id": item.prompt_id, "status": status, "priority": item.number, "outputs_count": 0,
                     **_origin(item.extra_data)})


def _previewable(media: str, output: dict[str, Any]) -> bool:
    return (media in PREVIEWABLE or str(output.get("format", "")).startswith(("video/", "audio/"))
            or str(output.get("filename", "")).lower().endswith(MODEL_EXTENSIONS))


def outputs_summary(outputs: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    """How many output items a prompt made, and the one to preview: the first saved one, else the first of any."""
    count, saved, other = 0, None, None
    for node_id, by_media in outputs.items():
        for media, items in (by_media.items() if isinstance(by_media, dict) else ()):
            if media == "animated" or not isinstance(items, list):  # a flag beside the frames, not an output
                continue
            for output in (o for o in items if isinstance(o, dict)):
                count += 1
                if _previewable(media, output):
                    chosen = {**output, "nodeId": node_id, "mediaType": media}
                    if output.get("type") == "output" and saved is None:
                        saved = chosen
                    elif other is None:
                        other = chosen
    return count, saved or other


def finished_job(prompt_id: str, entry: dict[str, Any], details: bool = False) -> dict[str, Any]:
    """A history entry as a job; with `details`, its outputs, status and workflow too."""
    number, _, prompt, extra_data, _ = entry["prompt"]
    status = entry.get("status") or {}
    times: dict[str, Any] = {}
    error, outcome = None, COMPLETED
    for name, data in (m for m in status.get("messages", []) if len(m) == 2 and isinstance(m[1], dict)):
        if name == EXECUTION_START:
            times["execution_start_time"] = data.get("timestamp")
        elif name in TERMINAL_EVENTS:
            times["execution_end_time"] = data.get("timestamp")
            error = data if name == EXECUTION_ERROR else error
            outcome = CANCELLED if name == EXECUTION_INTERRUPTED else outcome
    count, preview = outputs_summary(entry.get("outputs", {}))
    outcome = FAILED if status.get("status_str") == "error" and outcome != CANCELLED else outcome
    job = _present({"id": prompt_id, "status": outcome,
                    "priority": number, **_origin(extra_data), **times, "execution_error": error,
                    "outputs_count": count, "preview_output": preview})
    if details:
        job |= {"outputs": entry.get("outputs", {}), "execution_status": status,
                "workflow": {"prompt": prompt, "extra_data": extra_data}}
    return job


def _sort_key(sort_by: str):
    if sort_by == "execution_duration":
        def duration(job: dict[str, Any]) -> float:
            start, end = job.get("execution_start_time"), job.get("execution_end_time")
            return end - start if start and end else 0
        return duration
    return lambda job: job.get("create_time", 0)


def list_jobs(running: list[QueueItem], pending: list[QueueItem], history: dict[str, dict[str, Any]],
              query: JobsQuery) -> tuple[list[dict[str, Any]], int]:
    """The jobs the query selects, sorted, and the page asked for; with the count before paging."""
    wanted = set(query.status or (PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED))
    jobs = [queued_job(item, IN_PROGRESS) for item in running if IN_PROGRESS in wanted]
    jobs += [queued_job(item, PENDING) for item in pending if PENDING in wanted]
    jobs += [job for pid, entry in history.items() if (job := finished_job(pid, entry))["status"] in wanted]
    if query.workflow_id:
        jobs = [job for job in jobs if job.get("workflow_id") == query.workflow_id]
    jobs.sort(key=_sort_key(query.sort_by), reverse=query.sort_order == "desc")
    end = None if query.limit is None else query.offset + query.limit
    return jobs[query.offset:end], len(jobs)


async def get_jobs(request: web.Request) -> web.Response:
    """GET /api/jobs: `{jobs, pagination: {offset, limit, total, has_more}}`."""
    state = request.app[STATE]
    query = parse_query(request, JobsQuery)
    running, pending = state.queue.snapshot()
    history = await asyncio.to_thread(state.history.entries)
    jobs, total = list_jobs(running, pending, history, query)
    return json_response({"jobs": jobs, "pagination": {"offset": query.offset, "limit": query.limit, "total": total,
                                                       "has_more": query.offset + len(jobs) < total}})


async def get_job(request: web.Request) -> web.Response:
    """GET /api/jobs/{job_id}: one job (with its outputs and workflow once finished), or 404."""
    state = request.app[STATE]
    job_id = request.match_info["job_id"]
    entry = await asyncio.to_thread(state.history.get, job_id)
    if entry:
        return json_response(finished_job(job_id, entry[job_id], details=True))
    running, pending = state.queue.snapshot()
    for items, status in ((running, IN_PROGRESS), (pending, PENDING)):
        for item in items:
            if item.prompt_id == job_id:
                return json_response(queued_job(item, status))
    raise ApiError(404, f"job {job_id} not found: it is neither queued nor in the history", "job_not_found")
