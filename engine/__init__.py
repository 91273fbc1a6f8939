"""Sigmagraph's graph runtime: node API, registry, workflows, validation, cache, executor, CLI.

It knows nothing about diffusion. Node authors need only what is exported here.
"""

from .config import Config
from .context import Interrupted, RunContext
from .node import Boolean, Combo, Float, Int, NodeOutput, Socket, String, node
from .registry import Registry, SocketType
from .session import Session
from .spec import ALWAYS_RUN, Hidden, NodeSpec

__all__ = ["ALWAYS_RUN", "Boolean", "Combo", "Config", "Float", "Hidden", "Int", "Interrupted", "NodeOutput",
           "NodeSpec", "Registry", "RunContext", "Session", "Socket", "SocketType", "String", "node"]
