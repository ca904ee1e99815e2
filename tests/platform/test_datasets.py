"""Datasets API: streamed, size-capped uploads validated by the data library; versions, report,
preview; per-project namespaces; recipe references qualified to the project's own versions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from largeforge.errors import InvalidInput, NotFound
from largeforge.platform.datasets.orm import ProjectDatasetVersion
from largeforge.platform.datasets.service import qualify_recipe
from largeforge.platform.deps import make_session_factory
from largeforge.platform.projects.orm import Project
from largeforge.settings import get_settings
from tests.platform.conftest import Cast


def conversations(*answers: str) -> bytes:
    rows = [
        {"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": answer}]}
        for i, answer in enumerate(answers)
    ]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def upload(
    client: TestClient,
    cast: Cast,
    content: bytes,
    *,
    name: str = "chat",
    who: str = "developer",
    project: str = "alpha",
    filename: str = "chat.jsonl",
) -> Any:
    return client.post(
        f"/api/v1/projects/{cast.projects[project]}/datasets",
        files={"file": (filename, content, "application/octet-stream")},
        data={"name": name},
        headers=cast.auth(who),
    )


def base(cast: Cast, project: str = "alpha") -> str:
    return f"/api/v1/projects/{cast.projects[project]}/datasets"


def test_upload_versions_preview_and_report(platform_client: TestClient, cast: Cast) -> None:
    first = upload(platform_client, cast, conversations("four", "five", "six"))
    assert first.status_code == 201, first.text
    v1 = first.json()
    assert (v1["name"], v1["number"], v1["ref"], v1["created"]) == ("chat", 1, "chat@1", True)
    assert (v1["kind"], v1["format"], v1["row_count"], v1["columns"]) == (
        "conversation",
        "messages",
        3,
        ["messages"],
    )
    assert v1["filename"] == "chat.jsonl" and v1["size_bytes"] == len(conversations("four", "five", "six"))
    second = upload(platform_client, cast, conversations("seven"), filename="more.jsonl")
    assert second.status_code == 201 and second.json()["number"] == 2
    assert second.json()["version_id"] != v1["version_id"]

    listed = platform_client.get(base(cast), headers=cast.auth("viewer")).json()
    assert listed["count"] == 1
    assert (
        listed["data"][0]["name"],
        listed["data"][0]["versions"],
        listed["data"][0]["latest"]["number"],
    ) == (
        "chat",
        2,
        2,
    )
    versions = platform_client.get(f"{base(cast)}/chat/versions", headers=cast.auth("viewer")).json()
    assert [v["number"] for v in versions["data"]] == [1, 2] and versions["count"] == 2
    by_number = platform_client.get(f"{base(cast)}/chat/versions/1", headers=cast.auth("viewer")).json()
    by_id = platform_client.get(
        f"{base(cast)}/chat/versions/{v1['version_id'][:8]}", headers=cast.auth("viewer")
    ).json()
    assert by_number == by_id and by_number["version_id"] == v1["version_id"]

    report = platform_client.get(f"{base(cast)}/chat/versions/1/report", headers=cast.auth("viewer")).json()
    assert report["report"]["ok"] is True
    assert (report["report"]["rows_total"], report["report"]["rows_valid"]) == (3, 3)
    assert report["report"]["source"] == "chat.jsonl"  # the upload's name, never a server path

    preview = platform_client.get(f"{base(cast)}/chat/versions/1/preview?rows=2", headers=cast.auth("viewer"))
    assert preview.status_code == 200, preview.text
    rows = preview.json()["rows"]
    assert [row["messages"][1]["content"] for row in rows] == ["four", "five"]
    assert preview.json()["rendered"] is None
    too_many = platform_client.get(
        f"{base(cast)}/chat/versions/1/preview?rows=101", headers=cast.auth("viewer")
    )
    assert too_many.status_code == 422
    missing = platform_client.get(f"{base(cast)}/chat/versions/3", headers=cast.auth("viewer"))
    assert missing.status_code == 404 and "no version" in missing.json()["error"]["message"]


def test_preview_renders_through_a_project_model(
    platform_client: TestClient, cast: Cast, platform_db: str, tiny_model_dir: Path
) -> None:
    from largeforge.platform.models.service import claim_model, registry_name
    from largeforge.registry.service import RegistryService
    from largeforge.registry.storage import open_artifact_store

    with make_session_factory(platform_db)() as session:
        alpha = session.get(Project, cast.projects["alpha"])
        assert alpha is not None
        RegistryService(session, open_artifact_store()).register(
            tiny_model_dir, name=registry_name(alpha, "tiny")
        )
        claim_model(session, alpha, registry_name(alpha, "tiny"))
        session.commit()
    upload(platform_client, cast, conversations("four"))
    shown = platform_client.get(
        f"{base(cast)}/chat/versions/1/preview?rows=1&model=tiny", headers=cast.auth("viewer")
    )
    assert shown.status_code == 200, shown.text
    rendered = shown.json()["rendered"]["rows"][0]
    assert len(rendered["token_ids"]) == len(rendered["trained"]) > 0
    assert "four" in rendered["rendered"]
    # the answer is trained on, the question is not
    assert 0 < rendered["trained_count"] < len(rendered["token_ids"])
    beta_model = platform_client.get(
        f"{base(cast)}/chat/versions/1/preview?model=nothing", headers=cast.auth("viewer")
    )
    assert beta_model.status_code == 404


def test_identical_reupload_returns_the_existing_version(platform_client: TestClient, cast: Cast) -> None:
    content = conversations("four", "five")
    first = upload(platform_client, cast, content).json()
    # the same rows as a raw body, under another file name: same version, nothing new
    again = platform_client.post(
        f"{base(cast)}?name=chat&filename=copy.jsonl", content=content, headers=cast.auth("developer")
    )
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False
    assert (again.json()["version_id"], again.json()["number"]) == (first["version_id"], 1)
    versions = platform_client.get(f"{base(cast)}/chat/versions", headers=cast.auth("viewer")).json()
    assert versions["count"] == 1
    # the same content under another name is a version of that name, sharing the stored rows
    other = upload(platform_client, cast, content, name="chat-copy").json()
    assert other["created"] is True and other["version_id"] == first["version_id"]


@pytest.fixture
def small_upload_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("LARGEFORGE_MAX_UPLOAD_BYTES", "300")
    get_settings.cache_clear()
    yield 300
    get_settings.cache_clear()


def _files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def test_oversized_upload_is_refused_and_leaves_nothing(
    platform_client: TestClient, cast: Cast, platform_db: str, small_upload_limit: int, largeforge_home: Path
) -> None:
    content = conversations(*(f"answer number {i}" for i in range(20)))
    assert len(content) > small_upload_limit
    form = upload(platform_client, cast, content)
    assert form.status_code == 413, form.text
    assert form.json()["error"]["code"] == "too_large"
    assert "LARGEFORGE_MAX_UPLOAD_BYTES" in form.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must bite while streaming
        for start in range(0, len(content), 64):
            yield content[start : start + 64]

    streamed = platform_client.post(
        f"{base(cast)}?name=chat&filename=chat.jsonl", content=chunks(), headers=cast.auth("developer")
    )
    assert streamed.status_code == 413, streamed.text

    assert _files_under(largeforge_home / "tmp") == []
    assert _files_under(get_settings().datasets_dir) == []
    with make_session_factory(platform_db)() as session:
        assert session.scalar(select(func.count()).select_from(ProjectDatasetVersion)) == 0
    # under the limit it goes through
    assert upload(platform_client, cast, conversations("four")).status_code == 201


def test_bad_rows_get_422_with_the_report(
    platform_client: TestClient, cast: Cast, largeforge_home: Path
) -> None:
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    bad_role = {"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}]}
    content = "\n".join([json.dumps(good), json.dumps(bad_role), "{not json", json.dumps(good)]).encode()
    response = upload(platform_client, cast, content, filename="broken.jsonl")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_data"
    report = error["report"]
    assert (report["ok"], report["rows_total"], report["rows_valid"], report["errors_total"]) == (
        False,
        4,
        2,
        2,
    )
    assert sorted(e["line"] for e in report["errors"]) == [2, 3]
    assert report["source"] == "broken.jsonl" and "broken.jsonl" in error["message"]
    assert str(largeforge_home) not in response.text
    assert platform_client.get(base(cast), headers=cast.auth("viewer")).json()["count"] == 0

    unknown_type = upload(platform_client, cast, b"a,b\n", filename="data.txt")
    assert unknown_type.status_code == 422 and ".jsonl" in unknown_type.json()["error"]["message"]
    no_name = platform_client.post(
        base(cast), files={"file": ("x.jsonl", conversations("a"))}, headers=cast.auth("developer")
    )
    assert no_name.status_code == 422 and "name" in no_name.json()["error"]["message"]
    bad_name = upload(platform_client, cast, conversations("a"), name="../escape")
    assert bad_name.status_code == 422


def test_other_projects_datasets_are_not_found(platform_client: TestClient, cast: Cast) -> None:
    content = conversations("secret answer")
    beta_upload = upload(platform_client, cast, content, name="secret", who="outsider", project="beta")
    assert beta_upload.status_code == 201
    for path in ("/secret", "/secret/versions", "/secret/versions/1", "/secret/versions/1/preview"):
        response = platform_client.get(base(cast) + path, headers=cast.auth("owner"))
        assert response.status_code == 404, path
    by_id = platform_client.get(
        f"{base(cast)}/secret/versions/{beta_upload.json()['version_id']}", headers=cast.auth("owner")
    )
    assert by_id.status_code == 404
    assert platform_client.get(base(cast, "beta"), headers=cast.auth("owner")).status_code == 404
    assert upload(platform_client, cast, content, who="owner", project="beta").status_code == 404
    # the same rows uploaded by alpha are alpha's own first version; nothing of beta's upload shows
    mine = upload(platform_client, cast, content, name="mine", filename="mine.jsonl")
    assert mine.status_code == 201 and mine.json()["created"] is True and mine.json()["number"] == 1
    assert "secret" not in mine.text and "beta" not in mine.text
    assert [
        d["name"] for d in platform_client.get(base(cast), headers=cast.auth("viewer")).json()["data"]
    ] == ["mine"]
    assert upload(platform_client, cast, content, who="viewer").status_code == 403


def test_qualify_recipe_pins_the_projects_versions(
    platform_client: TestClient, cast: Cast, platform_db: str
) -> None:
    v1 = upload(platform_client, cast, conversations("one")).json()
    v2 = upload(platform_client, cast, conversations("two")).json()
    upload(platform_client, cast, conversations("beta"), name="theirs", who="outsider", project="beta")
    recipe: dict[str, Any] = {
        "method": "sft",
        "model": "m",
        "data": {"train": "chat@1", "eval": "chat"},
        "seed": 3,
    }
    with make_session_factory(platform_db)() as session:
        alpha = session.get(Project, cast.projects["alpha"])
        assert alpha is not None
        qualified = qualify_recipe(session, alpha, recipe)
        assert qualified["data"] == {"train": v1["version_id"], "eval": v2["version_id"]}
        assert qualified["seed"] == 3 and recipe["data"]["train"] == "chat@1"  # a copy
        by_prefix = qualify_recipe(session, alpha, {"data": {"train": v2["version_id"][:6]}})
        assert by_prefix["data"]["train"] == v2["version_id"]
        with pytest.raises(NotFound, match=r"data\.train"):
            qualify_recipe(session, alpha, {"data": {"train": "theirs"}})
        with pytest.raises(NotFound, match=r"data\.eval"):
            qualify_recipe(session, alpha, {"data": {"train": "chat", "eval": "chat@3"}})
        with pytest.raises(InvalidInput, match="file path"):
            qualify_recipe(session, alpha, {"data": {"train": "/etc/passwd"}})
        with pytest.raises(InvalidInput, match=r"data\.train"):
            qualify_recipe(session, alpha, {"method": "sft"})


def test_a_streamed_form_is_cut_off_at_the_limit(tmp_path: Path) -> None:
    """A chunked multipart body with no Content-Length: refused once the file part crosses the limit,
    with the rest of the body never read, and the temporary directory removed."""
    import asyncio

    from starlette.requests import Request

    from largeforge.errors import TooLarge
    from largeforge.platform.datasets.upload import receive_upload

    boundary = "lfboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nchat\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n'
    ).encode()
    chunks = [head] + [b'{"text": "row"}\n' * 64] * 100 + [f"\r\n--{boundary}--\r\n".encode()]
    served = iter(chunks)
    read = []

    async def receive() -> dict[str, Any]:
        chunk = next(served, b"")
        read.append(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunk)}

    headers = [(b"content-type", f"multipart/form-data; boundary={boundary}".encode())]
    request = Request(
        {"type": "http", "method": "POST", "headers": headers, "path": "/", "query_string": b""}, receive
    )

    async def upload() -> None:
        async with receive_upload(request, limit=4096, scratch_dir=tmp_path):
            raise AssertionError("an over-limit upload must not reach the caller")

    with pytest.raises(TooLarge):
        asyncio.run(upload())
    assert len(read) < 10  # stopped at the limit, not at the end of the body
    assert list(tmp_path.iterdir()) == []
