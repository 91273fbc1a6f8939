"""The durable store of the queue and the history: one SQLite database (WAL) under the state folder, or memory.

A prompt lives in `prompts` from the moment it is queued until it finishes; finishing deletes that
row and writes its history entry in one transaction, so a crash leaves each prompt either still
queued (and run again after a restart) or finished — never both, never neither. `attempts` counts
the runs that started, so a restart can tell a prompt that died mid-run from one never started.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

MEMORY = ":memory:"
DATABASE_NAME = "sigmagraph.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order, the tie-break between equal numbers
    prompt_id TEXT UNIQUE NOT NULL,
    item TEXT NOT NULL,                     -- ComfyUI's queue item [number, id, prompt, extra_data, outputs]
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- completion order
    prompt_id TEXT UNIQUE NOT NULL,
    entry TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StoredPrompt:
    """A queued prompt as stored: its queue item and how many of its runs started."""

    item: list[Any]
    attempts: int

    @property
    def prompt_id(self) -> str:
        """The prompt's id (the queue item's second field)."""
        return self.item[1]


def database_path(state_dir: str | Path) -> str:
    """The database file in a state folder (created if missing), or the in-memory database for ':memory:'."""
    if str(state_dir) == MEMORY:
        return MEMORY
    folder = Path(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / DATABASE_NAME)


class Store:
    """The queue's and the history's rows; every method is one transaction, safe from any thread."""

    def __init__(self, state_dir: str | Path = MEMORY, history_limit: int = 10000):
        self.history_limit = history_limit
        self._lock = threading.Lock()  # one connection shared by the loop's threads and the workers
        self._db = sqlite3.connect(database_path(state_dir), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a finished prompt survives a power cut, not only a kill
        self._db.executescript(SCHEMA)

    def _write(self, *statements: tuple[str, Iterable[Any]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, parameters in statements:
                    self._db.execute(sql, tuple(parameters))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _read(self, sql: str, parameters: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(parameters)).fetchall()

    # the queue

    def add_prompt(self, item: list[Any]) -> None:
        """Stores a newly queued prompt."""
        self._write(("INSERT INTO prompts (prompt_id, item) VALUES (?, ?)", (item[1], json.dumps(item))))

    def start_attempt(self, prompt_id: str) -> None:
        """Counts a run of the prompt as started (before it starts: a crash then shows it died running)."""
        self._write(("UPDATE prompts SET attempts = attempts + 1 WHERE prompt_id = ?", (prompt_id,)))

    def remove_prompts(self, prompt_ids: Iterable[str]) -> None:
        """Deletes queued prompts (unknown ids are ignored)."""
        self._write(*(("DELETE FROM prompts WHERE prompt_id = ?", (pid,)) for pid in prompt_ids))

    def prompts(self) -> list[StoredPrompt]:
        """Every stored prompt in arrival order (what a restart resumes)."""
        return [StoredPrompt(json.loads(item), attempts)
                for item, attempts in self._read("SELECT item, attempts FROM prompts ORDER BY seq")]

    # the history

    def finish(self, prompt_id: str, entry: dict[str, Any]) -> None:
        """Moves a prompt from the queue to the history (one transaction), dropping the oldest beyond the limit."""
        self._write(("DELETE FROM prompts WHERE prompt_id = ?", (prompt_id,)),
                    ("DELETE FROM history WHERE prompt_id = ?", (prompt_id,)),
                    ("INSERT INTO history (prompt_id, entry) VALUES (?, ?)", (prompt_id, json.dumps(entry))),
                    ("DELETE FROM history WHERE seq <= (SELECT max(seq) FROM history) - ?", (self.history_limit,)))

    def has_history(self, prompt_id: str) -> bool:
        """Whether the prompt has finished (and is still in the history)."""
        return bool(self._read("SELECT 1 FROM history WHERE prompt_id = ?", (prompt_id,)))

    def history_entry(self, prompt_id: str) -> dict[str, Any] | None:
        """A finished prompt's entry, or None."""
        rows = self._read("SELECT entry FROM history WHERE prompt_id = ?", (prompt_id,))
        return json.loads(rows[0][0]) if rows else None

    def history_count(self) -> int:
        """How many finished prompts the history holds."""
        return self._read("SELECT count(*) FROM history")[0][0]

    def history_slice(self, start: int, count: int | None) -> list[tuple[str, dict[str, Any]]]:
        """(prompt id, entry) pairs in completion order from position `start`, at most `count` (all: None)."""
        rows = self._read("SELECT prompt_id, entry FROM history ORDER BY seq LIMIT ? OFFSET ?",
                          (-1 if count is None else count, start))
        return [(prompt_id, json.loads(entry)) for prompt_id, entry in rows]

    def delete_history(self, prompt_ids: Iterable[str]) -> None:
        """Forgets finished prompts (unknown ids are ignored)."""
        self._write(*(("DELETE FROM history WHERE prompt_id = ?", (pid,)) for pid in prompt_ids))

    def clear_history(self) -> None:
        """Forgets every finished prompt."""
        self._write(("DELETE FROM history", ()))

    def close(self) -> None:
        """Closes the database (the store is unusable afterwards)."""
        with self._lock:
            self._db.close()
