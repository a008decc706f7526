import re
import tomllib

import yaml

from conftest import PROJECT


def names(requirements):
    return {re.split(r"[<>=\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_environment_yml_installs_the_core_dependencies():
    env = yaml.safe_load((PROJECT / "environment.yml").read_text())
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert names(project["dependencies"]) <= names(pip)
    assert {"torch", "transformers", "papermill", "jupyterlab", "matplotlib", "seaborn"} <= names(pip)
    assert "-e ." in pip
