"""The demo model: a toy text-to-image model trained by the project on procedural scenes, shipped with it.

scenes.py draws the training pictures and reads captions back into what a picture must show;
checkpoint.py is the packaged file (sigmagraph-demo.safetensors) and its metadata; quality.py
scores pictures against captions; generate.py makes pictures through the default workflow. The
family declaration is in models/families.py (DEMO); training is tools/train_demo.py.
"""
