"""Each dvc.yaml stage lists, as code deps, every mtdepth module its command imports (the import
closure, function-level imports included, found with ast), so an edit reruns exactly the stages it
can change. Exempt: the modules that print but compute nothing (EXEMPT) and package files that
hold a docstring alone."""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

import pytest
import yaml

from mtdepth.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"mtdepth": "mtdepth", "mtdepth.pipeline": "pipeline", "mtdepth.cache": "cache", "mtdepth.stages": "stages"}
PIPELINES = ("dvc.yaml", "ablation/dvc.yaml", "segmenter/dvc.yaml", "depthmodel/dvc.yaml")
EXEMPT = {"mtdepth/cli.py", "mtdepth/errors.py", "mtdepth/log.py", "mtdepth/halt.py"}  # the CLI, the error type,
# progress bars, the tests' kill hook (inert unless MTDEPTH_HALT is set)


def module_file(module: str) -> Path | None:
    """The source file of an mtdepth module (None: not a module of this repository)."""
    for package in sorted(FOLDERS, key=len, reverse=True):
        if module == package or module.startswith(package + "."):
            base = (
                ROOT / FOLDERS[package] / Path(*module[len(package) + 1 :].split("."))
                if module != package
                else ROOT / FOLDERS[package]
            )
            for path in (base.with_suffix(".py"), base / "__init__.py"):
                if path.is_file():
                    return path
    return None


def imports(path: Path) -> set[str]:
    """The mtdepth modules `path` imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mtdepth"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mtdepth"))
    return {m for m in found if module_file(m)}


def docstring_only(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return len(body) <= 1 and all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def closure(module: str) -> set[str]:
    """Repository-relative files of `module` and everything it imports, transitively."""
    seen, todo = set(), [module]
    while todo:
        path = module_file(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(imports(path))
    return {p.relative_to(ROOT).as_posix() for p in seen if not docstring_only(p)}


def stages() -> list[tuple[str, str, list[str]]]:
    """(stage, command line, deps) of every stage in every pipeline: dvc.yaml and each folder's dvc.yaml."""
    found = []
    for file in PIPELINES:
        for name, stage in yaml.safe_load((ROOT / file).read_text())["stages"].items():
            body = stage.get("do", stage)
            commands = body["cmd"] if isinstance(body["cmd"], list) else [body["cmd"]]
            for command in commands:
                found.append((f"{file}:{name}", command, body.get("deps", [])))
    return found


def test_every_pipeline_is_checked():
    found = [p.relative_to(ROOT).as_posix() for p in (*ROOT.glob("dvc.yaml"), *ROOT.glob("*/dvc.yaml"))]
    assert sorted(PIPELINES) == sorted(found)


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("stage, command, deps", stages(), ids=lambda v: v if isinstance(v, str) and ":" in v else "")
def test_code_deps_cover_the_commands_imports(stage, command, deps):
    words = shlex.split(command)
    assert words[0] == "mtdepth" and words[1] in COMMANDS, f"{stage}: not an mtdepth command: {command}"
    needed = closure(COMMANDS[words[1]][0].split(":")[0]) - EXEMPT
    missing = sorted(p for p in needed if not covered(p, deps))
    assert not missing, f"{stage}: `mtdepth {words[1]}` imports files dvc.yaml does not list: {missing}"


def test_code_deps_exist():
    """No dep names a file that is gone (a moved module must move in dvc.yaml too)."""
    for stage, _, deps in stages():
        for dep in deps:
            if dep.split("/")[0] in ("pipeline", "cache", "stages", "mtdepth"):
                assert (ROOT / dep).exists(), f"{stage}: {dep} does not exist"


# Params a training stage need not list: its command passes them as options (model, mask source, query) or
# they leave the trained weights alone (where the run goes, reader processes, log cadence).
GIVEN_BY_THE_COMMAND = {"train.model", "train.mask_source", "model.query"}
NO_EFFECT_ON_WEIGHTS = {"train.out", "train.workers", "train.log_every"}


def listed_params(stage: dict) -> set[str]:
    """The params keys a stage lists ("model" for a whole section), from every params file it names."""
    found = set()
    for entry in stage.get("params", []):
        found.update([entry] if isinstance(entry, str) else [k for keys in entry.values() for k in keys])
    return found


@pytest.mark.parametrize("file", PIPELINES)
def test_training_stages_list_every_param_that_changes_the_weights(file):
    """A new model.* or train.* param must rerun `dvc repro`'s trainings when it changes."""
    from dataclasses import fields

    from mtdepth.params import ModelParams, TrainParams

    for name, stage in yaml.safe_load((ROOT / file).read_text())["stages"].items():
        body = stage.get("do", stage)
        if not str(body["cmd"]).startswith("mtdepth train"):
            continue
        listed = listed_params(body)
        for section, params in (("model", ModelParams), ("train", TrainParams)):
            for key in (f"{section}.{f.name}" for f in fields(params)):
                if section in listed or key in listed or key in GIVEN_BY_THE_COMMAND | NO_EFFECT_ON_WEIGHTS:
                    continue
                pytest.fail(f"{file}:{name} does not list the param {key}")
