"""The demo model: a toy text-to-image model trained by the project on procedural scenes, shipped with it."""
