"""deploy/: the compose file, the Dockerfile and the Helm chart cannot run here, so they are parsed and
cross-checked: ports agree end to end, every LARGEFORGE_* name is a real setting, every command and
flag exists in the CLI, and the configs they carry validate."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from largeforge.cli.main import app as cli_app
from largeforge.routing.config import RouterConfig
from largeforge.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CHART = DEPLOY / "helm" / "largeforge"
SETTING_NAMES = {f"LARGEFORGE_{name.upper()}" for name in Settings.model_fields}


def assert_settings_exist(names: set[str], where: str) -> None:
    ours = {name for name in names if name.startswith("LARGEFORGE_")}
    assert ours, f"{where}: no LARGEFORGE_* settings at all"
    assert ours <= SETTING_NAMES, f"{where}: not Settings fields: {sorted(ours - SETTING_NAMES)}"


def assert_cli_accepts(argv: list[str], where: str) -> None:
    """``argv`` (largeforge SUBCOMMAND --flags …) names a real command and only its real options."""
    assert argv[0] == "largeforge", where
    command = typer.main.get_command(cli_app)
    assert isinstance(command, typer.core.TyperGroup)
    sub = command.commands.get(argv[1])
    assert sub is not None, f"{where}: no command `largeforge {argv[1]}`"
    options = {opt for param in sub.params for opt in (*param.opts, *param.secondary_opts)}
    flags = {arg for arg in argv[2:] if arg.startswith("--")}
    assert flags <= options, f"{where}: `largeforge {argv[1]}` has no {sorted(flags - options)}"


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


# --- docker-compose -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def test_compose_services_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"server", "worker", "router", "postgres", "redis"}
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert set(depends) <= set(services), f"{name} depends on an unknown service"
    assert "--no-worker" in services["server"]["command"]  # jobs run in the worker service
    for name in ("server", "worker", "router"):
        assert_cli_accepts([str(arg) for arg in services[name]["command"]], f"compose service {name}")
    # the API and the worker share the home (artifacts the worker writes, the API serves)
    assert services["server"]["volumes"] == services["worker"]["volumes"]
    for volume in services["server"]["volumes"] + services["postgres"]["volumes"]:
        assert volume.split(":")[0] in compose["volumes"]


def test_compose_ports_agree(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("server", "router"):
        command = [str(arg) for arg in services[name]["command"]]
        port = flag(command, "--port")
        assert flag(command, "--host") == "0.0.0.0", f"{name} must listen beyond the container's loopback"
        assert [mapping.split(":")[-1] for mapping in services[name]["ports"]] == [port], name
    health = " ".join(services["server"]["healthcheck"]["test"])
    assert f"127.0.0.1:{flag(services['server']['command'], '--port')}/ready" in health


def test_compose_environment_names_real_settings_and_services(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    names: set[str] = set()
    for service in services.values():
        names |= set(service.get("environment", {}))
    assert_settings_exist(names, "docker-compose.yml")
    env = services["server"]["environment"]
    assert env == services["worker"]["environment"]
    database = env["LARGEFORGE_DATABASE_URL"]
    postgres = services["postgres"]["environment"]
    assert database.startswith(f"postgresql+psycopg://{postgres['POSTGRES_USER']}:")
    assert database.endswith(f"@postgres:5432/{postgres['POSTGRES_DB']}")
    assert env["LARGEFORGE_REDIS_URL"].startswith("redis://redis:6379/")
    # the values themselves are valid settings
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    assert settings.log_format == "json" and settings.rate_limit_rpm == 600


def test_compose_router_config_validates(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    router = compose["services"]["router"]
    mount = next(v for v in router["volumes"] if v.endswith(":/config/experts.yaml:ro"))
    document = yaml.safe_load((DEPLOY / mount.split(":")[0]).read_text())
    config = RouterConfig.model_validate(document)
    key_env = config.experts[0].upstreams[0].api_key_env
    assert key_env in router["environment"]
    assert config.experts[0].upstreams[0].url.startswith("http://server:8000/api/v1/projects/")


# --- Dockerfile -----------------------------------------------------------------------------------


def test_dockerfile_exposes_the_port_its_command_serves() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    command = json.loads(re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert_cli_accepts(command, "Dockerfile CMD")
    exposed = re.findall(r"^EXPOSE (\d+)$", text, re.MULTILINE)
    assert exposed == [flag(command, "--port")]
    env_names = set(re.findall(r"\b(LARGEFORGE_[A-Z_]+)=", text))
    assert_settings_exist(env_names, "Dockerfile")


# --- Helm -----------------------------------------------------------------------------------------

_TEMPLATE = re.compile(r"{{-?\s*(.*?)\s*-?}}")


def render(template: str, values: dict[str, Any], release: str = "lf") -> str:
    """The subset of Helm the chart uses: ``.Values.a.b`` and ``.Release.Name``, piped through
    ``quote`` or ``toJson``. Anything else fails, which keeps the chart simple enough to check."""

    def substitute(match: re.Match[str]) -> str:
        expression, *pipes = [part.strip() for part in match.group(1).split("|")]
        if expression == ".Release.Name":
            value: Any = release
        else:
            assert expression.startswith(".Values."), f"unsupported template expression {expression!r}"
            value = values
            for part in expression.removeprefix(".Values.").split("."):
                assert isinstance(value, dict) and part in value, f"{expression}: not in values.yaml"
                value = value[part]
        for pipe in pipes:
            assert pipe in ("quote", "toJson"), f"unsupported pipe {pipe!r}"
            value = json.dumps(str(value) if pipe == "quote" else value)
        return str(value)

    return _TEMPLATE.sub(substitute, template)


@pytest.fixture(scope="module")
def chart() -> dict[tuple[str, str], dict[str, Any]]:
    """Every rendered object, by (kind, name)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((CHART / "templates").glob("*.yaml")):
        for document in yaml.safe_load_all(render(path.read_text(), values)):
            if document:
                key = (document["kind"], document["metadata"]["name"])
                assert key not in objects, f"{path.name}: {key} defined twice"
                objects[key] = document
    return objects


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "largeforge"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])


def test_chart_objects(chart: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert set(chart) == {
        ("ConfigMap", "lf-settings"),
        ("Secret", "lf-secrets"),
        ("Deployment", "lf-api"),
        ("Service", "lf-api"),
        ("Deployment", "lf-worker"),
        ("ConfigMap", "lf-router"),
        ("Deployment", "lf-router"),
        ("Service", "lf-router"),
    }


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("component", ["api", "router"])
def test_chart_ports_agree(chart: dict[tuple[str, str], dict[str, Any]], component: str) -> None:
    deployment, service = chart[("Deployment", f"lf-{component}")], chart[("Service", f"lf-{component}")]
    container = _container(deployment)
    args = [str(arg) for arg in container["args"]]
    assert_cli_accepts(args, f"chart {component}")
    port = int(flag(args, "--port"))
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(port, port)]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert flag(args, "--host") == "0.0.0.0"


def test_chart_api_shuts_down_gracefully(chart: dict[tuple[str, str], dict[str, Any]]) -> None:
    deployment = chart[("Deployment", "lf-api")]
    args = [str(arg) for arg in _container(deployment)["args"]]
    assert "--no-worker" in args
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > int(flag(args, "--graceful-timeout"))
    probes = _container(deployment)
    assert probes["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/health"
    assert_cli_accepts([str(arg) for arg in _container(chart[("Deployment", "lf-worker")])["args"]], "worker")


def test_chart_environment_is_real_settings(
    chart: dict[tuple[str, str], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_map, secret = chart[("ConfigMap", "lf-settings")], chart[("Secret", "lf-secrets")]
    env = {**settings_map["data"], **secret["stringData"]}
    assert_settings_exist(set(env), "Helm ConfigMap/Secret")
    assert all(isinstance(value, str) for value in env.values())  # ConfigMap values must be strings
    for (kind, _name), document in chart.items():
        if kind != "Deployment":
            continue
        for source in _container(document).get("envFrom", []):
            ref = source.get("configMapRef") or source.get("secretRef")
            ref_kind = "ConfigMap" if "configMapRef" in source else "Secret"
            assert (ref_kind, ref["name"]) in chart, f"{_name} reads a missing {ref_kind} {ref['name']}"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.database_url and settings.database_url.startswith("postgresql+psycopg://")
    assert settings.redis_url and settings.rate_limit_tpm == 1_000_000


def test_chart_router_config_validates(chart: dict[tuple[str, str], dict[str, Any]]) -> None:
    config_map = chart[("ConfigMap", "lf-router")]
    config = RouterConfig.model_validate(yaml.safe_load(config_map["data"]["experts.yaml"]))
    args = [str(arg) for arg in _container(chart[("Deployment", "lf-router")])["args"]]
    mount = _container(chart[("Deployment", "lf-router")])["volumeMounts"][0]["mountPath"]
    assert flag(args, "--config") == f"{mount}/experts.yaml"
    api_port = chart[("Service", "lf-api")]["spec"]["ports"][0]["port"]
    assert f":{api_port}/api/v1/projects/" in config.experts[0].upstreams[0].url


def test_readme_documents_every_file() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for path in ("docker-compose.yml", "Dockerfile", "helm/largeforge", "router/experts.yaml"):
        assert path in readme, path
