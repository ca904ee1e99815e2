"""The web UI: the shell and its assets are served without credentials (they hold no data), and every
API call in app.js names a method and path the control plane really has (from its OpenAPI document),
so a renamed route cannot silently break the page."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from largeforge.platform.app import create_platform_app

STATIC = Path(__file__).resolve().parents[2] / "src" / "largeforge" / "web" / "static"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# A string literal that starts with /api/v1 ('…', "…" or `…`, up to its closing quote or a query).
API_LITERAL = re.compile(r"""(["'`])(/api/v1/[^"'`?]*)""")
# How app.js calls the API: api("METHOD", "/api/v1/…") or new EventSource(`/api/v1/…`) (a GET).
API_CALL = re.compile(r"""\bapi\(\s*"([A-Z]+)",\s*(["'`])(/api/v1/[^"'`?]*)""")
EVENT_SOURCE = re.compile(r"""new EventSource\(\s*(["'`])(/api/v1/[^"'`?]*)""")


@pytest.fixture
def web_client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_platform_app(database_url=f"sqlite:///{tmp_path / 'web.db'}")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def template(path: str) -> str:
    """``/projects/${pid()}/jobs/{job_id}`` → ``/projects/{}/jobs/{}``: JS and OpenAPI placeholders alike."""
    return re.sub(r"\$\{[^}]*\}|\{[^}]*\}", "{}", path)


def test_shell_and_assets_are_public_and_reference_each_other(web_client: TestClient) -> None:
    page = web_client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^":]+)"', page.text)
    assert sorted(assets) == ["app.js", "style.css"]  # relative, nothing from another origin
    script = web_client.get("/ui/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert script.text == (STATIC / "app.js").read_text(encoding="utf-8")
    assert web_client.get("/ui/style.css").headers["content-type"].startswith("text/css")
    assert web_client.get("/ui", follow_redirects=True).text == page.text
    assert web_client.get("/ui/missing.js").status_code == 404
    # Public means no data: the API behind it still wants credentials.
    assert web_client.get("/api/v1/projects").status_code == 401


def test_every_api_call_of_the_page_exists_in_openapi(web_client: TestClient) -> None:
    source = (STATIC / "app.js").read_text(encoding="utf-8")
    operations = {
        (method.upper(), template(path))
        for path, item in web_client.get("/openapi.json").json()["paths"].items()
        for method in item
    }
    calls = [(method, template(path)) for method, _, path in API_CALL.findall(source)]
    calls += [("GET", template(path)) for _, path in EVENT_SOURCE.findall(source)]
    # Every /api/v1 literal is inside one of those calls, so none escapes the method check.
    assert len(API_LITERAL.findall(source)) == len(calls)
    assert len(calls) >= 15
    missing = sorted(f"{method} {path}" for method, path in set(calls) - operations)
    assert not missing, f"app.js calls routes the server does not have: {missing}"
    wanted = {
        ("POST", "/api/v1/auth/login"),
        ("GET", "/api/v1/projects/{}/jobs/{}/events"),
        ("POST", "/api/v1/projects/{}/jobs"),
        ("GET", "/api/v1/projects/{}/models"),
        ("GET", "/api/v1/projects/{}/deployments"),
        ("GET", "/api/v1/projects/{}/usage"),
    }
    assert wanted <= set(calls)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's YAML reader")
def test_the_page_reads_recipe_yaml_like_pyyaml(tmp_path: Path) -> None:
    files = sorted(EXAMPLES.glob("recipes/*.yaml")) + sorted(EXAMPLES.glob("suites/*.yaml"))
    assert files
    probe = tmp_path / "probe.yaml"
    probe.write_text(
        "# a comment\nmethod: sft  # trailing\nlist:\n- a\n- {b: 1, c: [x, 'y z']}\n"
        "nested:\n  - name: one\n    value: 1.5e-3\n  - name: two\n    enabled: false\n"
        'text: |\n  line one\n  line two\nquoted: "a: b"\nempty:\n',
        encoding="utf-8",
    )
    runner = tmp_path / "run.js"
    runner.write_text(
        "const fs = require('fs'); const vm = require('vm');\n"
        "globalThis.document = { addEventListener() {} };\n"
        "vm.runInThisContext(fs.readFileSync(process.argv[2], 'utf8'));\n"
        "const out = process.argv.slice(3).map((f) => parseYaml(fs.readFileSync(f, 'utf8')));\n"
        "process.stdout.write(JSON.stringify(out));\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        ["node", str(runner), str(STATIC / "app.js"), str(probe), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    parsed = json.loads(done.stdout)
    expected = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in [probe, *files]]
    assert parsed == expected
