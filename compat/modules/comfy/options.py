"""ComfyUI's `comfy.options`: whether comfy.cli_args parses the command line.

Under Sigmagraph the command line is Sigmagraph's own, so `args` always holds ComfyUI's defaults
with Sigmagraph's configuration filled in; the switch is kept for code that sets it.
"""

args_parsing = False


def enable_args_parsing(enable: bool = True) -> None:
    """Sets the switch (Sigmagraph never parses ComfyUI's command line)."""
    global args_parsing
    args_parsing = enable
