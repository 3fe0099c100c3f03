"""split_validation and take: seeded, disjoint, and labels stay with their images."""

from __future__ import annotations

import pytest
import torch

from resdyn.data import Split, split_validation, take


def indexed(n: int = 50) -> Split:
    """Image i is filled with i; label i is i mod 10, so pairing can be checked from the pixels."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    return Split(images, torch.arange(n) % 10)


def ids(split: Split) -> list[int]:
    assert torch.equal(split.labels, split.images[:, 0, 0, 0].long() % 10)  # still paired
    return split.images[:, 0, 0, 0].tolist()


def test_split_validation_partitions_the_split() -> None:
    train, val = split_validation(indexed(), 0.2, seed=0)
    assert len(train) == 40 and len(val) == 10
    assert sorted(ids(train) + ids(val)) == list(range(50))
    assert ids(train) == sorted(ids(train)) and ids(val) == sorted(ids(val))  # original order kept
    assert train.images.is_contiguous() and train.images.dtype == torch.uint8


def test_split_validation_is_seeded() -> None:
    assert ids(split_validation(indexed(), 0.2, seed=1)[1]) == ids(
        split_validation(indexed(), 0.2, seed=1)[1]
    )
    assert ids(split_validation(indexed(), 0.2, seed=1)[1]) != ids(
        split_validation(indexed(), 0.2, seed=2)[1]
    )


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 0.001])
def test_split_validation_refuses_empty_parts(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        split_validation(indexed(), fraction, seed=0)


def test_take() -> None:
    split = indexed()
    assert take(split, None, seed=0) is split and take(split, 500, seed=0) is split
    subset = take(split, 7, seed=3)
    assert len(subset) == 7 and len(set(ids(subset))) == 7
    assert ids(subset) == ids(take(split, 7, seed=3)) != ids(take(split, 7, seed=4))
    assert set(ids(take(split, 3, seed=3))) <= set(ids(subset))  # a prefix of the same permutation
    with pytest.raises(ValueError):
        take(split, -1, seed=0)


def test_split_checks_its_tensors() -> None:
    with pytest.raises(ValueError, match="uint8"):
        Split(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="int64"):
        Split(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64))
