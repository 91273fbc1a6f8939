"""A pack whose third-party dependency is not installed."""

import sigmagraph_fixture_absent_module  # noqa: F401

NODE_CLASS_MAPPINGS = {}
