# custom_nodes/palette_pack/test_palette.py
import torch
from pathlib import Path

from sigmagraph.engine.testing import output, pack_session, run

PACK = Path(__file__).parent


def test_make_palette(tmp_path):
    session = pack_session(PACK, tmp_path)
    result = run(session, {"1": {"class_type": "MakePalette", "inputs": {"colors": "ff0000"}},
                           "2": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
                           "3": {"class_type": "PaletteImage", "inputs": {"palette": ["1", 0], "size": 8}}})
    assert output(session, result, "1").tolist() == [[1.0, 0.0, 0.0]]
