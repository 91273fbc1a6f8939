"""The demo models: toy text-to-image models trained by the project on procedural scenes, shipped with it.

Two of them: the flow demo (SD3's MMDiT and 16-channel latents, rectified flow; the default
workflow's model) and the SD demo (SD 1.x's UNet, v-prediction). scenes.py draws the training
pictures and reads captions back into what a picture must show; checkpoint.py is the packaged
files and their metadata; quality.py scores pictures against captions (colours, places, shapes);
generate.py makes pictures through each model's shipped workflow. The families are declared in
models/families.py (DEMO_FLOW, DEMO); training is tools/train_demo.py.
"""
