"""Every registered model: one training step on the CPU, right output shape, finite loss and gradients."""

import pytest
import torch

from resdyn import build_model, list_models
from resdyn.nets import model_family, model_options
from resdyn.nets.base import FAMILIES, required


def needs_options(name: str) -> bool:
    return any(required(option) for option in model_options(name))


NAMED = [n for n in list_models() if not needs_options(n)]


def image_size(name: str) -> int:
    """16 px, or 64 px for the ImageNet layout, which downsamples 32 times: at 16 px its last two stages would be
    1 x 1, and BatchNorm over a batch of two 1 x 1 maps normalises every value to +-1, whose gradients overflow."""
    return 64 if model_family(name)[0] is FAMILIES.get("imagenet-resnet") else 16


def test_families_need_the_option_their_names_fix():
    assert [n for n in list_models() if needs_options(n)] == ["fractalnet", "imagenet-resnet", "lm-resnet", "resnet",
                                                              "resnext29", "revnet"]
    assert build_model("lm-resnet", depth=8)(torch.randn(2, 3, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("name", NAMED)
def test_every_registered_model_trains_one_step(name):
    torch.manual_seed(0)
    model = build_model(name, in_channels=1, num_classes=10)
    size = image_size(name)
    x, y = torch.randn(2, 1, size, size), torch.tensor([1, 7])
    logits = model(x)
    assert logits.shape == (2, 10)
    loss = torch.nn.functional.cross_entropy(logits, y)
    assert torch.isfinite(loss)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} received no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"


@pytest.mark.parametrize("name", NAMED)
def test_every_registered_model_trains_one_step_in_bf16_and_channels_last(name):
    """What train.precision = "auto" chooses on a CPU with native bf16 (and on CUDA): bf16 autocast, channels_last.
    The parameters and their gradients stay float32."""
    torch.manual_seed(0)
    model = build_model(name, in_channels=1, num_classes=10).to(memory_format=torch.channels_last)
    size = image_size(name)
    x = torch.randn(2, 1, size, size).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([1, 7]))
    assert logits.shape == (2, 10) and torch.isfinite(loss)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} received no gradient"
        assert p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), f"{pname}: {p.grad.dtype}"
