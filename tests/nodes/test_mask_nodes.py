"""SolidMask and MaskComposite against masks written out by hand."""

from __future__ import annotations

import pytest
import torch

from sigmagraph.nodes.packs.mask import MaskComposite, SolidMask


def composite(destination, source, x, y, operation):
    return MaskComposite(destination=destination, source=source, x=x, y=y, operation=operation)


def test_solid_mask_is_one_value_everywhere():
    mask = SolidMask(value=0.25, width=3, height=2)
    assert mask.shape == (1, 2, 3) and torch.equal(mask, torch.full((1, 2, 3), 0.25))


def test_a_rectangle_added_at_an_offset():
    mask = composite(torch.zeros(1, 4, 5), torch.ones(1, 2, 2), x=3, y=1, operation="add")
    expected = torch.tensor([[0, 0, 0, 0, 0],
                             [0, 0, 0, 1, 1],
                             [0, 0, 0, 1, 1],
                             [0, 0, 0, 0, 0]], dtype=torch.float32)
    assert torch.equal(mask[0], expected)


def test_the_part_beyond_the_edge_is_dropped_and_results_clamp():
    mask = composite(torch.full((1, 3, 3), 0.5), torch.ones(1, 3, 3), x=2, y=2, operation="add")
    assert mask[0, 2, 2] == 1.0 and mask[0, :2].eq(0.5).all() and mask[0, 2, :2].eq(0.5).all()
    assert composite(torch.zeros(1, 2, 2), torch.ones(1, 2, 2), x=5, y=0, operation="add").eq(0).all()
    assert composite(torch.full((1, 2, 2), 0.3), torch.ones(1, 2, 2), 0, 0, "subtract").eq(0).all()


@pytest.mark.parametrize("operation, expected", [
    ("multiply", [0.0, 0.0, 0.36, 0.36]), ("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1]), ("xor", [0, 1, 1, 0]),
])
def test_operations_elementwise(operation, expected):
    destination = torch.tensor([[[0.2, 0.6], [0.4, 0.6]]])  # rounds to 0, 1, 0, 1
    source = torch.tensor([[[0.0, 0.0], [0.9, 0.6]]])  # rounds to 0, 0, 1, 1
    result = composite(destination, source, 0, 0, operation).flatten()
    assert torch.allclose(result, torch.tensor(expected, dtype=torch.float32))


def test_batches_broadcast():
    source = torch.stack([torch.ones(2, 2), torch.zeros(2, 2)])
    result = composite(torch.zeros(1, 2, 2), source, 0, 0, "add")
    assert result.shape == (2, 2, 2) and result[0].eq(1).all() and result[1].eq(0).all()
