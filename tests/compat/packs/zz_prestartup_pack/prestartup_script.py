"""Runs before any pack is imported (ComfyUI runs every pack's prestartup script first)."""

import os

import folder_paths

print("fixture prestartup script ran")  # on stdout, which must not reach `sigmagraph nodes --json`'s
folder_paths.add_model_folder_path("fixture_prestartup", os.path.join(folder_paths.models_dir, "fixture_prestartup"))
