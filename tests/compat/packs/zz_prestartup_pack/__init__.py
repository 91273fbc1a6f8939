"""A pack whose prestartup_script.py registers a model folder kind; it has no nodes of its own."""

NODE_CLASS_MAPPINGS = {}
