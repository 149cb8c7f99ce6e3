"""The console scripts the README documents are the ones pyproject.toml installs, and each one imports."""

import importlib
import os
import re

import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _scripts():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["scripts"]


def _readme_commands():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return set(re.findall(r"\bdccrn-[a-z-]*[a-z]", f.read()))


def test_every_readme_command_is_installed():
    missing = _readme_commands() - set(_scripts())
    assert not missing, f"README uses commands that pyproject.toml does not install: {sorted(missing)}"


def test_every_script_target_exists():
    for name, target in _scripts().items():
        module, _, attribute = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attribute)), name


def test_the_distillation_trainer_is_installed():
    # dccrn-distill once went missing from [project.scripts] while the README documented it.
    assert _scripts()["dccrn-distill"] == "trainers.distill:run"
