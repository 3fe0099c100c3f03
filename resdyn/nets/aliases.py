"""Every named model as one row: name -> (family, the options the name fixes, description).

The names of the papers' networks, grep-able; each is its family with some options fixed (pass the others as
usual; to change a fixed one use the family: ``resnet`` with ``depth=N``, ``scheme=...``).
"""

from __future__ import annotations

from typing import Any

_POST = "post-activation basic (He 2015)"
_LM = "LM-ResNet (Lu et al. 2018), pre-activation, linear two-step scheme"
_PLAIN = "the same fields without skip connections (He et al. 2015, Fig. 6 left)"
_POLY = "layout with PolyNet blocks x + F x + F F x (Zhang et al. 2017)"
_IMAGENET = "ImageNet layout (He et al. 2015, Table 1), post-activation, projection shortcuts"
_PREACT_IMAGENET = "ImageNet layout, pre-activation bottlenecks (He et al. 2016), projection shortcuts"
# Lu et al. 2018 (Table 3 of Lu's slides) trained pre-activation LM-ResNet-50/101 on ImageNet; their released code
# builds CIFAR networks only, so these take its CIFAR choices: the two-step rule on every block that keeps the
# shape, the BN-ReLU-conv1x1 shortcut (B-preact) where it changes.
_LM_IMAGENET = {"scheme": "lm", "preact": True, "shortcut_option": "B-preact"}

ALIASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "lm-resnet": ("resnet", {"scheme": "lm", "preact": True}, "LM-ResNet of any valid depth (option depth=N required)"),
    "resnet20": ("resnet", {"depth": 20}, f"CIFAR ResNet-20, {_POST}"),
    "resnet32": ("resnet", {"depth": 32}, f"CIFAR ResNet-32, {_POST}"),
    "resnet44": ("resnet", {"depth": 44}, f"CIFAR ResNet-44, {_POST}"),
    "resnet56": ("resnet", {"depth": 56}, f"CIFAR ResNet-56, {_POST}"),
    "resnet110": ("resnet", {"depth": 110}, f"CIFAR ResNet-110, {_POST}"),
    "resnet164": ("resnet", {"depth": 164}, "CIFAR ResNet-164, pre-activation bottleneck (He 2016)"),
    "resnet1202": ("resnet", {"depth": 1202}, f"CIFAR ResNet-1202, {_POST}"),
    "plain20": ("resnet", {"depth": 20, "scheme": "plain"}, f"CIFAR plain-20: ResNet-20's layout, {_PLAIN}"),
    "plain32": ("resnet", {"depth": 32, "scheme": "plain"}, f"CIFAR plain-32: ResNet-32's layout, {_PLAIN}"),
    "plain44": ("resnet", {"depth": 44, "scheme": "plain"}, f"CIFAR plain-44: ResNet-44's layout, {_PLAIN}"),
    "plain56": ("resnet", {"depth": 56, "scheme": "plain"}, f"CIFAR plain-56: ResNet-56's layout, {_PLAIN}"),
    "lm-resnet20": ("resnet", {"depth": 20, "scheme": "lm", "preact": True}, f"LM-ResNet-20: {_LM}"),
    "lm-resnet32": ("resnet", {"depth": 32, "scheme": "lm", "preact": True}, f"LM-ResNet-32: {_LM}"),
    "lm-resnet44": ("resnet", {"depth": 44, "scheme": "lm", "preact": True}, f"LM-ResNet-44: {_LM}"),
    "lm-resnet56": ("resnet", {"depth": 56, "scheme": "lm", "preact": True}, f"LM-ResNet-56: {_LM}"),
    "lm-resnet110": ("resnet", {"depth": 110, "scheme": "lm", "preact": True}, f"LM-ResNet-110: {_LM}"),
    "lm-resnet164": ("resnet", {"depth": 164, "scheme": "lm", "preact": True}, f"LM-ResNet-164: {_LM}"),
    "polynet20": ("resnet", {"depth": 20, "scheme": "poly"}, f"ResNet-20 {_POLY}"),
    "polynet56": ("resnet", {"depth": 56, "scheme": "poly"}, f"ResNet-56 {_POLY}"),
    "polynet110": ("resnet", {"depth": 110, "scheme": "poly"}, f"ResNet-110 {_POLY}"),
    "resnext29-8x64d": ("resnext29", {"cardinality": 8}, "ResNeXt-29 8x64d (Xie et al. 2017)"),
    "resnext29-16x64d": ("resnext29", {"cardinality": 16}, "ResNeXt-29 16x64d (Xie et al. 2017)"),
    "lm-resnext29-8x64d": ("resnext29", {"cardinality": 8, "scheme": "lm"},
                           "LM-ResNeXt-29 8x64d: the two-step scheme on ResNeXt blocks (Lu et al. 2018)"),
    "lm-resnext29-16x64d": ("resnext29", {"cardinality": 16, "scheme": "lm"},
                            "LM-ResNeXt-29 16x64d: the two-step scheme on ResNeXt blocks (Lu et al. 2018)"),
    "revnet38": ("revnet", {"depth": 38}, "CIFAR RevNet-38 (Gomez et al. 2017): basic functions, 3 units per stage"),
    "revnet110": ("revnet", {"depth": 110}, "CIFAR RevNet-110 (Gomez et al. 2017): basic functions, 9 units per stage"),
    "revnet164": ("revnet", {"depth": 164},
                  "CIFAR RevNet-164 (Gomez et al. 2017): bottleneck functions, 9 units per stage"),
    "resnet18": ("imagenet-resnet", {"depth": 18}, f"ResNet-18, {_IMAGENET}"),
    "resnet34": ("imagenet-resnet", {"depth": 34}, f"ResNet-34, {_IMAGENET}"),
    "resnet50": ("imagenet-resnet", {"depth": 50}, f"ResNet-50, {_IMAGENET}"),
    "resnet101": ("imagenet-resnet", {"depth": 101}, f"ResNet-101, {_IMAGENET}"),
    "resnet152": ("imagenet-resnet", {"depth": 152}, f"ResNet-152, {_IMAGENET}"),
    "preact-resnet50": ("imagenet-resnet", {"depth": 50, "preact": True}, f"ResNet-50, {_PREACT_IMAGENET}"),
    "preact-resnet101": ("imagenet-resnet", {"depth": 101, "preact": True}, f"ResNet-101, {_PREACT_IMAGENET}"),
    "preact-resnet152": ("imagenet-resnet", {"depth": 152, "preact": True}, f"ResNet-152, {_PREACT_IMAGENET}"),
    "lm-resnet50": ("imagenet-resnet", {"depth": 50, **_LM_IMAGENET},
                    f"LM-ResNet-50 (ImageNet): {_LM}, BN-ReLU-projection shortcuts"),
    "lm-resnet101": ("imagenet-resnet", {"depth": 101, **_LM_IMAGENET},
                     f"LM-ResNet-101 (ImageNet): {_LM}, BN-ReLU-projection shortcuts"),
    "fractalnet20": ("fractalnet", {"columns": 3}, "CIFAR FractalNet, C=3 columns x B=5 blocks, 20 layers deep"),
    "fractalnet40": ("fractalnet", {"columns": 4}, "CIFAR FractalNet, C=4 columns x B=5 blocks, 40 layers deep"),
}
