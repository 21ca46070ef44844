"""Conda environments: every env file parses, pins its versions, and names every third-party module the
rules using it import. Conda channels are not reachable here, so `--sdm conda` itself cannot run in the
tests; the module lists are derived from the code (each rule's script and the localmer modules it
reaches, function-level imports included), not copied by hand."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

RULES = REPO / "workflow" / "rules"
PACKAGE = REPO / "src" / "localmer"
# Import name -> the package that provides it, where the two differ.
PROVIDER = {
    "cv2": ("py-opencv", "opencv"),
    "skimage": ("scikit-image",),
    "yaml": ("pyyaml",),
    "sklearn": ("scikit-learn",),
    "matplotlib": ("matplotlib-base", "matplotlib"),
    "keras": ("tensorflow", "keras"),  # TensorFlow 2.21 from PyPI brings Keras 3
}


def env_paths() -> dict[str, Path]:
    """ENV_* names of common.smk -> env files."""
    text = (RULES / "common.smk").read_text()
    return {name: (RULES / path).resolve() for name, path in re.findall(r'^(ENV_\w+) = "([^"]+)"', text, re.M)}


def rules() -> dict[str, dict]:
    """rule name -> {'conda': ENV name, 'script': path} from the rule files (rules may sit in an if)."""
    found = {}
    for path in sorted(RULES.glob("*.smk")):
        lines = path.read_text().splitlines()
        for start, line in enumerate(lines):
            match = re.match(r"(\s*)(?:rule|checkpoint) (\w+):$", line)
            if not match:
                continue
            indent, body = len(match.group(1)), []
            for following in lines[start + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                body.append(following.strip())
            directive = {body[i - 1]: body[i] for i in range(1, len(body)) if body[i - 1] in ("conda:", "script:")}
            script = directive.get("script:", "").strip('"')
            found[match.group(2)] = {
                "file": path.name,
                "conda": directive.get("conda:"),
                "script": (path.parent / script).resolve() if script else None,
            }
    return found


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """(localmer modules, third-party top-level modules) a source file imports anywhere in it, plus
    packages located with importlib.resources.files("name")."""
    local, third_party = set(), set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module == "localmer":  # from . import x / from .x import y / from localmer ...
                if node.module and node.module != "localmer":
                    local.add(node.module.split(".")[-1])
                else:
                    local.update(alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").exists())
                continue
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", "") == "files"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value != "localmer"
        ):
            names = [node.args[0].value]
        for name in names:
            top = name.split(".")[0]
            if top == "localmer":
                local.update(name.split(".")[1:2])
            elif top not in sys.stdlib_module_names:
                third_party.add(top)
    return local, third_party


def modules_needed(script: Path) -> set[str]:
    """Third-party modules a rule's script can import: its own and those of every localmer module it
    reaches (transitively, module- and function-level)."""
    local, needed = imports_of(script)
    seen: set[str] = set()
    while local - seen:
        module = (local - seen).pop()
        seen.add(module)
        more_local, more_needed = imports_of(PACKAGE / f"{module}.py")
        local |= more_local
        needed |= more_needed
    return needed


def env_packages(path: Path) -> dict[str, str]:
    """package -> pinned version of an env file; fails on a dependency without a version."""
    env = yaml.safe_load(path.read_text())
    packages = {}
    for dependency in env["dependencies"]:
        if isinstance(dependency, dict):
            for requirement in dependency["pip"]:
                name, sep, version = requirement.partition("==")
                assert sep and version, f"{path.name}: pip requirement {requirement!r} is not pinned (==)"
                packages[re.sub(r"\[.*\]", "", name)] = version
        else:
            name, sep, version = dependency.partition("=")
            assert sep and version, f"{path.name}: {dependency!r} is not pinned (name=version)"
            packages[name] = version
    return packages


def test_every_rule_has_a_conda_env_that_exists():
    envs = env_paths()
    found = rules()
    scripts = {rule["script"] for rule in found.values()}
    assert scripts >= set((REPO / "workflow" / "scripts").glob("*.py"))  # every script belongs to a rule seen
    for name, rule in found.items():
        assert rule["conda"] in envs, (
            f"rule {name} ({rule['file']}): conda: {rule['conda']} is not an ENV_* of common.smk"
        )
        assert envs[rule["conda"]].exists(), envs[rule["conda"]]


@pytest.mark.parametrize("path", sorted((REPO / "workflow" / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_files_parse_use_conda_forge_only_and_pin_versions(path):
    env = yaml.safe_load(path.read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    packages = env_packages(path)
    assert packages["python"] == "3.11"


def test_every_env_names_the_third_party_modules_its_rules_import():
    envs = env_paths()
    missing = []
    for name, rule in rules().items():
        if rule["script"] is None:
            continue
        packages = env_packages(envs[rule["conda"]])
        for module in sorted(modules_needed(rule["script"])):
            if not any(provider in packages for provider in PROVIDER.get(module, (module,))):
                missing.append(f"rule {name}: {module} is not in {envs[rule['conda']].name}")
    assert not missing, "\n".join(missing)


def test_the_import_scan_sees_function_level_and_transitive_imports():
    needed = modules_needed(REPO / "workflow" / "scripts" / "train_spatial.py")
    assert {"tensorflow", "keras", "h5py", "numpy", "pandas"} <= needed  # tensorflow only inside functions
    assert {"dlib", "face_recognition_models"} <= modules_needed(REPO / "workflow" / "scripts" / "detect_landmarks.py")
    assert "tensorflow" not in modules_needed(REPO / "workflow" / "scripts" / "evaluate.py")
