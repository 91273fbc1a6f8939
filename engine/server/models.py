"""The request bodies and query strings the API accepts, as pydantic models (wrong types answer 400)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Client ids travel in URLs and logs: short and printable (ComfyUI's clients send UUID hex).
ClientId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
FolderType = Literal["output", "input", "temp"]


class Body(BaseModel):
    """A JSON request body; unknown keys are ignored, as ComfyUI's clients send extra ones."""

    model_config = ConfigDict(extra="ignore")


class PromptRequest(Body):
    """POST /prompt."""

    prompt: dict[str, Any]
    client_id: ClientId | None = None
    extra_data: dict[str, Any] = Field(default_factory=dict)
    front: bool = False
    number: int | Annotated[float, Field(allow_inf_nan=False)] | None = None
    prompt_id: str | None = None
    partial_execution_targets: list[str] | None = None

    @field_validator("prompt_id")
    @classmethod
    def _canonical_uuid(cls, value: str | None) -> str | None:
        """ComfyUI's rule: a client-chosen id is a UUID in canonical lowercase form."""
        if value is not None:
            try:
                canonical = str(uuid.UUID(value))
            except ValueError:
                canonical = None
            if canonical != value:
                raise ValueError("prompt_id must be a lowercase hyphenated UUID; omit it to let the server choose")
        return value


class ClearDelete(Body):
    """POST /queue and POST /history: clear everything and/or delete some prompt ids."""

    clear: bool = False
    delete: list[str] = Field(default_factory=list)


class InterruptRequest(Body):
    """POST /interrupt (an empty body means: the running prompt, whichever it is)."""

    prompt_id: str | None = None


class FreeRequest(Body):
    """POST /free: either flag clears the engine cache (models are cached outputs)."""

    unload_models: bool = False
    free_memory: bool = False


class HistoryQuery(Body):
    """GET /history?max_items&offset."""

    max_items: int | None = Field(None, ge=0)
    offset: int | None = Field(None, ge=0)


class ViewQuery(Body):
    """GET /view?filename&subfolder&type&preview."""

    filename: str = Field(min_length=1)
    subfolder: str = ""
    type: FolderType = "output"
    preview: str | None = Field(None, pattern=r"^(webp|jpeg)?(;\d{1,3})?$")

    def preview_format(self) -> tuple[str, int]:
        """`preview=webp;90` as (Pillow format name, quality 1-100); webp and quality 90 by default."""
        name, _, quality = (self.preview or "").partition(";")
        return (name or "webp").upper(), min(max(int(quality or 90), 1), 100)


class UploadForm(Body):
    """The text fields of POST /upload/image (the file itself is the `image` field)."""

    subfolder: str = ""
    type: FolderType = "input"
    overwrite: bool = False


class SocketQuery(Body):
    """GET /ws?clientId."""

    clientId: ClientId | None = None  # noqa: N815 - ComfyUI's query parameter name


# "cancelled" (an interrupted prompt) is the status newer ComfyUI front ends ask for beside ComfyUI's four.
JobStatus = Literal["pending", "in_progress", "completed", "failed", "cancelled"]


class JobsQuery(Body):
    """GET /api/jobs?status&workflow_id&sort_by&sort_order&limit&offset (ComfyUI's job listing)."""

    status: list[JobStatus] | None = None  # a comma-separated list in the query string
    workflow_id: str | None = None
    sort_by: Literal["created_at", "execution_duration"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    limit: int | None = Field(None, gt=0)
    offset: int = 0

    @field_validator("status", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        """`status=pending,completed` as a list (empty means every status)."""
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()] or None
        return value

    @field_validator("offset")
    @classmethod
    def _clamp(cls, value: int) -> int:
        """A negative offset counts as 0, as ComfyUI's handler clamps it."""
        return max(value, 0)
