"""deploy/: the manifests and launcher configs parse, pass Ray's own schema, and their command lines are the job's.

No cluster is needed: KubeRay manifests are rendered with their params.env as envsubst would, launcher
configs go through the checks `ray up` runs before it contacts any machine, and every command line
(manifest entrypoints, README examples) is parsed by the parsers of jobs.evaluate and jobs.submit.
"""

from __future__ import annotations

import copy
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from jobs.evaluate import build_parser as evaluate_parser
from jobs.submit import build_parser as submit_parser

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KUBERAY = ["rayjob.yaml", "raycluster.yaml"]
LAUNCHER = ["aws.yaml", "local.yaml"]


def params() -> dict[str, str]:
    """deploy/kuberay/params.env as `set -a; . params.env` reads it."""
    values = {}
    for line in (DEPLOY / "kuberay" / "params.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def render(name: str) -> dict:
    """A KubeRay manifest with its ${PARAMS} substituted (as envsubst does), parsed."""
    values = params()
    text = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], (DEPLOY / "kuberay" / name).read_text())
    assert "$" not in text, f"{name}: a parameter missing from params.env, or a stray $ envsubst would blank"
    return yaml.safe_load(text)


def evaluate_args(command: list[str]) -> list[str]:
    """The options of a `python -m jobs.evaluate ...` command line."""
    assert command[:3] == ["python", "-m", "jobs.evaluate"], command
    return command[3:]


def containers(spec: dict) -> list[dict]:
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


@pytest.mark.parametrize("name", KUBERAY)
def test_kuberay_manifests_parse_once_rendered_with_their_parameters(name):
    manifest = render(name)
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] in ("RayJob", "RayCluster")


@pytest.mark.parametrize("name", KUBERAY)
def test_kuberay_pods_run_the_image_with_their_resources_as_parameters(name):
    manifest = render(name)
    spec = manifest["spec"].get("rayClusterSpec", manifest["spec"])
    for container in containers(spec):
        assert container["image"] == params()["EVALPIPE_IMAGE"]
        assert container["resources"]["limits"]["cpu"] in (params()["HEAD_CPU"], params()["WORKER_CPU"])
    assert spec["rayVersion"] == params()["RAY_VERSION"] and spec["authOptions"]["mode"] == "token"


@pytest.mark.parametrize("name", KUBERAY)
def test_kuberay_heads_run_no_evaluation_actor(name):
    manifest = render(name)
    spec = manifest["spec"].get("rayClusterSpec", manifest["spec"])
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def test_the_rayjob_runs_the_evaluate_job_on_its_own_cluster_and_then_shuts_it_down():
    spec = render("rayjob.yaml")["spec"]
    options = evaluate_parser().parse_args(evaluate_args(shlex.split(spec["entrypoint"])))
    assert options.address == "auto" and options.output == params()["EVAL_OUTPUT"]
    assert options.workers == int(params()["EVAL_WORKERS"])
    assert spec["shutdownAfterJobFinishes"] is True and spec["entrypointNumCpus"] == 0


def test_the_raycluster_autoscales_its_workers_from_zero():
    spec = render("raycluster.yaml")["spec"]
    workers = spec["workerGroupSpecs"][0]
    assert spec["enableInTreeAutoscaling"] is True
    assert workers["minReplicas"] == 0 and workers["maxReplicas"] == int(params()["WORKER_MAX_REPLICAS"])


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_configs_pass_the_checks_ray_up_runs_first(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((DEPLOY / "launcher" / name).read_text())
    validate_config(prepare_config(copy.deepcopy(config)))


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_heads_run_no_evaluation_actor_and_use_token_authentication(name):
    config = yaml.safe_load((DEPLOY / "launcher" / name).read_text())
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--num-cpus=0" in head_start and "RAY_AUTH_MODE=token" in head_start
    assert "RAY_AUTH_MODE=token" in " ".join(config["worker_start_ray_commands"])
    assert "~/.ray/auth_token" in config["file_mounts"]


def test_the_aws_launcher_autoscales_cpu_workers_from_zero():
    config = yaml.safe_load((DEPLOY / "launcher" / "aws.yaml").read_text())
    workers = config["available_node_types"]["cpu-worker"]
    assert config["provider"]["type"] == "aws" and workers["min_workers"] == 0 < workers["max_workers"]


def test_the_on_premises_launcher_uses_exactly_the_listed_machines():
    config = yaml.safe_load((DEPLOY / "launcher" / "local.yaml").read_text())
    assert config["provider"]["type"] == "local"
    assert config["min_workers"] == config["max_workers"] == len(config["provider"]["worker_ips"])


def test_every_deploy_file_pins_the_same_ray_version():
    dockerfile = re.search(r"^ARG RAY_VERSION=(\S+)$", (DEPLOY / "Dockerfile").read_text(), re.M).group(1)
    pinned = re.findall(r"ray\[default\]==([\w.]+)", (DEPLOY / "launcher" / "local.yaml").read_text())
    readme = re.findall(r"ray\[default\]==([\w.]+)", (DEPLOY / "README.md").read_text())
    assert {dockerfile, params()["RAY_VERSION"], *pinned, *readme} == {dockerfile}


def test_the_image_copies_every_package_the_project_installs():
    pyproject = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY --chown=\S+ (\w+) \1$", (DEPLOY / "Dockerfile").read_text(), re.M))
    allowed = set(re.findall(r"^!(\w+)/$", (DEPLOY / "Dockerfile.dockerignore").read_text(), re.M))
    assert packages == copied == allowed


def readme_commands() -> list[list[str]]:
    """Every jobs.evaluate / jobs.submit / ray job submit command in deploy/README.md's code blocks."""
    blocks = re.findall(r"```(?:bash)?\n(.*?)```", (DEPLOY / "README.md").read_text(), re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    prefixes = ("python -m jobs.evaluate", "python -m jobs.submit", "ray job submit")
    return [shlex.split(line.strip()) for line in lines if line.strip().startswith(prefixes)]


def test_the_readme_shows_every_way_to_run_the_job():
    starts = {" ".join(command[:3]) for command in readme_commands()}
    assert starts == {"python -m jobs.submit", "ray job submit"}


@pytest.mark.parametrize("command", readme_commands(), ids=lambda c: " ".join(c[:3]))
def test_readme_command_lines_are_accepted_by_the_jobs_parsers(command):
    own, rest = command[:command.index("--")], command[command.index("--") + 1:]
    if own[:3] == ["python", "-m", "jobs.submit"]:
        submit_parser().parse_args(own[3:])
        evaluate_parser().parse_args(rest)
    else:  # ray job submit ... -- python -m jobs.evaluate ...
        evaluate_parser().parse_args(evaluate_args(rest))
