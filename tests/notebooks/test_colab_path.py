"""The Colab path: a reader opens a notebook in Colab and runs it from the top.

What Colab does, reproduced offline:

- a fresh Python environment that already holds torch, torchvision and the rest of what Colab ships
  (here: a new virtual environment whose site directory links the packages of this project's
  environment that Colab preinstalls, so nothing is copied or downloaded);
- a ``google.colab`` module, imported when the kernel starts, so the set-up cell takes its Colab branch;
- the repository at ``companion.REPOSITORY_URL`` with the release tag ``companion.RELEASE_TAG``: a git
  repository made from this checkout's files, which git reaches through ``url.<local>.insteadOf`` in a
  throw-away global git config, so the set-up cell runs unchanged;
- the notebook executed with nbclient in a kernel of that environment.

The set-up cell must install ``companion`` from that tag and nothing else (no torch reinstalled or
upgraded), and the notebook must then run to the end on the installed package, not on this checkout.
On Colab, pip downloads what Colab lacks (jupyterquiz) and builds the package in an isolated
environment; here pip has no index (``PIP_NO_INDEX``), jupyterquiz comes from this environment, and the
build uses Colab's setuptools (``--no-build-isolation``), so that the test stays offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import companion

ROOT = Path(__file__).resolve().parents[2]
# A notebook without extras that runs in seconds; every notebook's set-up cell is the same
# (tests/notebooks/test_hygiene.py checks), so one stands for all.
NOTEBOOK = ROOT / "notebooks" / "4.0-gradient-descent-and-backprop.ipynb"
# What Colab preinstalls that companion or the kernel needs (with their own dependencies).
COLAB_PREINSTALLED = (
    "pip", "setuptools", "wheel", "ipykernel", "torch", "torchvision", "numpy", "matplotlib",
    "scikit-learn", "scipy", "threadpoolctl", "pandas", "tqdm", "ipywidgets",
)
# What pip downloads on Colab, provided from this environment instead (the test runs offline).
DOWNLOADED_ON_COLAB = ("jupyterquiz",)
INSTALL = re.compile(r'"companion(\[[a-z,]+\])? @ git\+(?P<url>[^@"]+)@(?P<tag>[^"]+)"')

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None, reason="the Colab path test needs git (pip installs companion from a git URL)"
)


def _distributions(roots) -> list:
    """The installed distributions ``roots`` name, with everything they require (extras included)."""
    found, done, todo = {}, set(), [(name, "") for name in roots]
    while todo:
        name, extra = todo.pop()
        name = canonicalize_name(name)
        if (name, extra) in done:
            continue
        done.add((name, extra))
        try:
            dist = found.get(name) or distribution(name)
        except PackageNotFoundError:
            if name in map(canonicalize_name, roots):
                raise
            continue  # an optional dependency this environment does not have
        found[name] = dist
        for spec in dist.requires or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": extra}):
                todo += [(requirement.name, e) for e in ("", *requirement.extras)]
    return list(found.values())


def _colab_site(site: Path) -> None:
    """Link the preinstalled packages' files (top-level modules and metadata) into ``site``."""
    site.mkdir()
    for dist in _distributions(COLAB_PREINSTALLED + DOWNLOADED_ON_COLAB):
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] not in ("..", "__pycache__")}:
            source = Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    # Colab imports google.colab when a kernel starts; the set-up cell only asks whether it is there.
    (site / "google" / "colab").mkdir(parents=True, exist_ok=True)
    (site / "google" / "colab" / "__init__.py").write_text('"""A stand-in for Colab\'s module."""\n')


def _tagged_repository(repo: Path, env: dict) -> None:
    """A git repository holding this checkout's files (committed or not, minus ignored), tagged."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=True, env=env,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "release"],
                 ["tag", companion.RELEASE_TAG]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


def _site_packages(venv: Path) -> Path:
    paths = sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})
    return Path(paths["purelib"])


def _installed(site_packages: Path) -> set[str]:
    return {canonicalize_name(p.name.split("-")[0]) for p in site_packages.glob("*.dist-info")}


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """Run the notebook as Colab would; return what the environment looked like before and after."""
    tmp = tmp_path_factory.mktemp("colab")
    home = tmp / "home"
    home.mkdir()
    (tmp / "repo").mkdir()
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Course release\n\temail = release@example.invalid\n"
        f'[url "file://{tmp / "repo"}"]\n\tinsteadOf = {companion.REPOSITORY_URL}\n'
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n",
        encoding="utf-8",
    )
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "GIT_", "VIRTUAL_ENV"))}
    git_env = {**base_env, "HOME": str(home), "GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_CONFIG_NOSYSTEM": "1"}
    _tagged_repository(tmp / "repo", git_env)

    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = _site_packages(venv)
    _colab_site(tmp / "colab-site")
    (site_packages / "colab.pth").write_text(f"import site; site.addsitedir({str(tmp / 'colab-site')!r})\n")
    python = venv / "bin" / "python"
    before = _installed(site_packages)

    startup = tmp / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "ipython" / "profile_default" / "startup" / "00-block-network.py", startup)
    (startup / "01-colab.py").write_text("import google.colab  # noqa: F401  (as on Colab)\n")
    kernels = tmp / "kernels" / "colab"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab stand-in", "language": "python",
    }))
    kernel_env = {
        **git_env,
        "PATH": f"{venv / 'bin'}{os.pathsep}{base_env.get('PATH', '')}",
        "IPYTHONDIR": str(tmp / "ipython"),
        "MPLCONFIGDIR": str(home / "matplotlib"),
        "OMP_NUM_THREADS": "1",
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip reads this "no" option inverted: 0 turns isolation off
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_CACHE_DIR": str(home / "pip-cache"),
    }

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import importlib.metadata, json, companion, torch\n"
        "print(json.dumps({'companion': companion.__file__, 'version': companion.__version__,\n"
        "                  'torch': torch.__file__, 'torch_version': importlib.metadata.version('torch')}))"
    ))
    manager = KernelManager(kernel_name="colab", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp / "kernels")]))
    client = NotebookClient(notebook, km=manager, timeout=300, kernel_name="colab", allow_errors=False)
    work = tmp / "content"  # Colab's working folder: not this checkout, so `import companion` needs the install
    work.mkdir()
    try:
        client.execute(env=kernel_env, cwd=str(work))
    finally:  # nbclient shuts down only the kernels it started itself, not one given as km=
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
    report = json.loads(notebook.cells[-1].outputs[-1]["text"])
    return {"site_packages": site_packages, "before": before, "after": _installed(site_packages),
            "report": report, "colab_site": tmp / "colab-site"}


def test_the_set_up_cell_installs_the_release_tag_of_the_repository():
    cell = next(c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code")
    install = INSTALL.search(cell.source)
    assert install, f"{NOTEBOOK.name}: no `companion @ git+<url>@<tag>` in the set-up cell"
    assert install["url"] == companion.REPOSITORY_URL
    assert install["tag"] == companion.RELEASE_TAG == f"v{companion.__version__}"


def test_colab_installs_companion_and_nothing_it_already_has(colab):
    assert colab["after"] - colab["before"] == {"companion"}, (
        f"the set-up cell installed {sorted(colab['after'] - colab['before'])} into the Colab environment; "
        "it must install companion only (never torch or another package Colab ships)"
    )


def test_torch_is_neither_reinstalled_nor_upgraded(colab):
    report = colab["report"]
    assert Path(report["torch"]).is_relative_to(colab["colab_site"]), report["torch"]
    assert report["torch_version"] == distribution("torch").version


def test_the_notebook_ran_to_the_end_on_the_installed_package(colab):
    report = colab["report"]
    assert Path(report["companion"]).is_relative_to(colab["site_packages"]), (
        f"the notebook imported companion from {report['companion']}, not from the installed release"
    )
    assert report["version"] == companion.__version__
