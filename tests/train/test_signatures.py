"""The loop's phases share one context (Parts, Placement, Job) rather than threading device, world and folder
through every call: no function in resdyn.train takes more than seven parameters."""

import dataclasses
import importlib
import inspect
import pkgutil

import resdyn.train

MOST = 7


def functions():
    for info in pkgutil.iter_modules(resdyn.train.__path__):
        module = importlib.import_module(f"resdyn.train.{info.name}")
        for name, value in vars(module).items():
            if getattr(value, "__module__", None) != module.__name__:
                continue  # imported from elsewhere
            if inspect.isfunction(value):
                yield f"{module.__name__}.{name}", value
            elif inspect.isclass(value):
                for attribute, member in vars(value).items():
                    member = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                    if dataclasses.is_dataclass(value) and attribute.startswith("__"):
                        continue  # written by @dataclass: one parameter per field
                    if inspect.isfunction(member):
                        yield f"{module.__name__}.{name}.{attribute}", member


def test_no_function_in_resdyn_train_takes_more_than_seven_parameters():
    found = dict(functions())
    assert "resdyn.train.loop.train_epoch" in found and "resdyn.train.finish.summarise" in found
    too_many = {}
    for where, function in found.items():
        names = [p for p in inspect.signature(function).parameters if p not in ("self", "cls")]
        if len(names) > MOST:
            too_many[where] = names
    assert too_many == {}
