"""Every registered model: one training step on the CPU, right output shape, finite loss and gradients."""

import inspect

import pytest
import torch

from resdyn import build_model, list_models
from resdyn.nets import MODELS


def needs_depth(name: str) -> bool:
    depth = inspect.signature(MODELS.get(name)).parameters.get("depth")
    return depth is not None and depth.default is inspect.Parameter.empty


NAMED = [n for n in list_models() if not needs_depth(n)]


def test_families_build_any_depth():
    assert [n for n in list_models() if needs_depth(n)] == ["lm-resnet", "resnet"]
    assert build_model("lm-resnet", depth=8)(torch.randn(2, 3, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("name", NAMED)
def test_every_registered_model_trains_one_step(name):
    torch.manual_seed(0)
    model = build_model(name, in_channels=1, num_classes=10)
    x, y = torch.randn(2, 1, 16, 16), torch.tensor([1, 7])
    logits = model(x)
    assert logits.shape == (2, 10)
    loss = torch.nn.functional.cross_entropy(logits, y)
    assert torch.isfinite(loss)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} received no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
