"""Conda environments and the software stack: every env file parses, names every third-party module the
rules using it import, and pins the versions of envs/stack.yaml, as pyproject.toml does (so `--sdm conda`
and the venv run the same libraries). Conda channels are not reachable here, so `--sdm conda` itself
cannot run in the tests; the module lists are derived from the code (each rule's script and the localmer
modules it reaches, function-level imports included), not copied by hand."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

RULES = REPO / "workflow" / "rules"
ENVS = REPO / "envs"
STACK = yaml.safe_load((ENVS / "stack.yaml").read_text())
ENV_FILES = sorted(path for path in ENVS.glob("*.yaml") if path.name != "stack.yaml")
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
    """rule name -> {'file', 'conda': ENV name, 'script': path, 'body': stripped lines} from the rule
    files (rules may sit in an if)."""
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
                "body": body,
            }
    return found


def module_file(name: str) -> Path | None:
    """The source file of localmer module ``name`` (dotted, e.g. localmer.datasets.common), or None."""
    base = PACKAGE.parent.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def imports_of(path: Path, module: str | None = None) -> tuple[set[str], set[str]]:
    """(localmer modules, third-party top-level modules) a source file imports anywhere in it, plus
    packages located with importlib.resources.files("name"). ``module`` is the file's own dotted name,
    which relative imports start from; localmer modules come back dotted, each with its parent packages
    (importing a submodule runs their __init__)."""
    local, third_party = set(), set()
    package = (module if path.name == "__init__.py" else module.rpartition(".")[0]) if module else None
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                names = [f"{base}.{node.module}" if node.module else base]
            else:
                names = [node.module]
            # from package import submodule: the alias may be a module of its own.
            names += [f"{names[0]}.{alias.name}" for alias in node.names if module_file(f"{names[0]}.{alias.name}")]
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
                parts = name.split(".")
                local.update(".".join(parts[:i]) for i in range(2, len(parts) + 1) if module_file(".".join(parts[:i])))
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
        more_local, more_needed = imports_of(module_file(module), module)
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


def test_every_env_file_belongs_to_an_env_of_common_smk():
    assert set(ENV_FILES) == set(env_paths().values())


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_files_parse_use_conda_forge_only_and_pin_versions(path):
    env = yaml.safe_load(path.read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    env_packages(path)  # every dependency pinned


def conda_name(library: str) -> str:
    return STACK["libraries"][library].get("conda", library)


def pypi_names(library: str) -> list[str]:
    return [canonicalize_name(name) for name in STACK["libraries"][library].get("pypi", [library])]


def pinned_series(specifier: str) -> str | None:
    """ "==2.4.*" -> "2.4", "==0.3.0" -> "0.3.0"; None for anything else (a range, several clauses)."""
    match = re.fullmatch(r"==([0-9][0-9.]*?)(\.\*)?", specifier)
    return match.group(1) if match else None


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_files_pin_the_stack_versions(path):
    env = yaml.safe_load(path.read_text())
    wrong = []
    from_pypi = {name for name, entry in STACK["libraries"].items() if entry.get("conda") == "pip"}
    by_conda_name = {conda_name(name): name for name in STACK["libraries"] if name not in from_pypi}
    for dependency in env["dependencies"]:
        if isinstance(dependency, dict):  # the pip section: exactly the libraries the stack says come from PyPI
            for line in dependency["pip"]:
                requirement = Requirement(line)
                library = next((n for n in from_pypi if canonicalize_name(requirement.name) in pypi_names(n)), None)
                if library is None:
                    wrong.append(f"pip: {line}: not a library that envs/stack.yaml installs from PyPI (conda: pip)")
                elif pinned_series(str(requirement.specifier)) != STACK["libraries"][library]["version"]:
                    wrong.append(f"pip: {line}: expected =={STACK['libraries'][library]['version']}.*")
            continue
        name, _, version = dependency.partition("=")
        expected = {"python": STACK["python"], "pip": STACK["pip"]}.get(name)
        if expected is None and name in by_conda_name:
            expected = STACK["libraries"][by_conda_name[name]]["version"]
        if expected is None:
            wrong.append(f"{dependency}: not in envs/stack.yaml (add the library there, with its conda name)")
        elif version != expected:
            wrong.append(f"{dependency}: envs/stack.yaml says {name}={expected}")
    assert not wrong, f"{path.name}:\n" + "\n".join(wrong)


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["cpu"] + project["optional-dependencies"]["cuda"]
    return [Requirement(line) for line in lines]


def test_pyproject_pins_the_stack_versions():
    requirements = {canonicalize_name(r.name): r for r in pyproject_requirements()}
    wrong = []
    for library, entry in STACK["libraries"].items():
        present = [name for name in pypi_names(library) if name in requirements]
        if not present:
            wrong.append(f"{library}: none of {pypi_names(library)} is a dependency in pyproject.toml")
        for name in present:
            specifier = str(requirements[name].specifier)
            if pinned_series(specifier) != entry["version"]:
                wrong.append(f"{name}: pyproject.toml says {specifier}, expected =={entry['version']}.*")
    requires_python = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f"{STACK['python']}.0" in SpecifierSet(requires_python), requires_python
    assert not wrong, "\n".join(wrong)


def test_the_conda_envs_install_from_pypi_only_what_the_stack_says_and_why():
    for library, entry in STACK["libraries"].items():
        if entry.get("conda") == "pip":
            assert entry.get("reason"), f"envs/stack.yaml: {library} comes from PyPI in the envs; say why (reason)"
        else:
            assert "reason" not in entry, f"envs/stack.yaml: {library}: reason is only for conda: pip"


def test_the_environment_running_the_tests_is_the_stack():
    """The venv (pip install -e .[cpu,test]) runs the stack's versions: what pyproject pins, installed."""
    assert ".".join(map(str, sys.version_info[:2])) == STACK["python"]
    wrong = []
    for library, entry in STACK["libraries"].items():
        installed = {}
        for name in pypi_names(library):
            try:
                installed[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        if not installed:
            wrong.append(f"{library}: none of {pypi_names(library)} is installed")
        for name, version in installed.items():
            if not (version == entry["version"] or version.startswith(entry["version"] + ".")):
                wrong.append(f"{name} {version} is installed; envs/stack.yaml says {entry['version']}")
    assert not wrong, "\n".join(wrong)


# OpenCV's PyPI builds: each installs cv2/, so a second one beside the stack's overwrites its files.
OPENCV_BUILDS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless")


def other_opencv_builds(installed: set[str]) -> list[str]:
    """The OpenCV builds among ``installed`` (canonical names) that are not the stack's."""
    return sorted(installed & set(OPENCV_BUILDS) - set(pypi_names("opencv")))


def test_the_tests_run_one_opencv_build_the_contrib_one_with_tv_l1():
    import cv2

    installed = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()}
    assert other_opencv_builds(installed) == []
    # Control: a venv made before the switch to contrib had opencv-python-headless (the Makefile removes it).
    assert other_opencv_builds(installed | {"opencv-python-headless"}) == ["opencv-python-headless"]
    assert callable(cv2.optflow.DualTVL1OpticalFlow_create)  # contrib's optflow module


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
