"""Imports each real ComfyUI pack under build/real_packs after compat.install(); prints one JSON line per pack.

Run in its own process (the packs change sys.modules and sys.path): `python real_pack_smoke.py PACKS_DIR`.
Each line: {"pack", "ok", "error" (type: message of the first failure), "where" (file:line it was raised)}.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conftest  # noqa: E402,F401 - makes sigmagraph.compat importable from the checkout

from sigmagraph import compat  # noqa: E402
from sigmagraph.engine import Config  # noqa: E402
from sigmagraph.engine.discovery import import_pack_path  # noqa: E402


def main(packs: Path) -> None:
    root = Path(tempfile.mkdtemp())
    compat.install(Config(models_dir=root / "models", output_dir=root / "output", input_dir=root / "input",
                          temp_dir=root / "temp", device="cpu", custom_nodes_dirs=(packs,)))
    for path in sorted(p for p in packs.iterdir() if (p / "__init__.py").is_file()):
        try:
            with contextlib.redirect_stdout(sys.stderr):  # packs print; stdout carries the results
                import_pack_path(path)
            line = {"pack": path.name, "ok": True}
        except BaseException as error:  # noqa: BLE001 - SystemExit from a pack too
            frame = traceback.extract_tb(error.__traceback__)[-1]
            line = {"pack": path.name, "ok": False, "error": f"{type(error).__name__}: {error}",
                    "where": f"{frame.filename}:{frame.lineno}"}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
