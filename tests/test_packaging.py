"""The pip and conda installs list the same dependencies; the package is typed."""

from pathlib import Path

import tomllib
import yaml

import companion

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    optional = project["optional-dependencies"]
    pip_deps = set(project["dependencies"]) | {
        dep for deps in optional.values() for dep in deps if not dep.startswith("companion[")
    }
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda_pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(conda_pip) - {"--editable ."} == pip_deps
    assert "--editable ." in conda_pip


def test_torch_has_lower_bounds_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for dep in project["dependencies"]:
        assert "==" not in dep and "<" not in dep, f"{dep}: Colab must not be made to reinstall it"


def test_package_is_typed_and_versioned():
    assert (Path(companion.__file__).parent / "py.typed").exists()
    assert companion.__version__.count(".") == 2


def test_dev_installs_every_extra():
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    extras = sorted(set(optional) - {"dev"})
    assert f"companion[{','.join(extras)}]" in optional["dev"]
