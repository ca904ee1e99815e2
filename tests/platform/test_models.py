"""Models API: a project's part of the registry in project-local names — versions, aliases, lineage,
eval results, delete — and nothing of another project's models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from largeforge.errors import Conflict, InvalidInput
from largeforge.evaluation.orm import EvalResult
from largeforge.platform.deps import make_session_factory
from largeforge.platform.models.service import (
    HIDDEN,
    claim_model,
    model_belongs,
    public_name,
    registry_name,
)
from largeforge.platform.projects.orm import Project
from largeforge.registry.service import RegistryService
from largeforge.registry.storage import open_artifact_store
from tests.platform.conftest import Cast


@dataclass
class Registered:
    alpha_v1_id: str


@pytest.fixture
def registered(platform_client: TestClient, cast: Cast, platform_db: str, tiny_model_dir: Path) -> Registered:
    """alpha: ``tiny`` v1 and v2 (v2 made from v1), an eval result on v1; beta: ``hidden`` made from
    alpha's tiny:1 (a cross-project edge alpha's lineage must not name)."""
    with make_session_factory(platform_db)() as session:
        alpha, beta = (session.get(Project, cast.projects[p]) for p in ("alpha", "beta"))
        assert alpha is not None and beta is not None
        registry = RegistryService(session, open_artifact_store())
        tiny = registry_name(alpha, "tiny")
        v1 = registry.register(tiny_model_dir, name=tiny, inputs=[("dataset", "0123456789abcdef")])
        registry.register(tiny_model_dir, name=tiny, parents=[(f"{tiny}:1", "base")], tags={"stage": "tuned"})
        claim_model(session, alpha, tiny)
        hidden = registry_name(beta, "hidden")
        registry.register(tiny_model_dir, name=hidden, parents=[(f"{tiny}:1", "base")])
        claim_model(session, beta, hidden)
        session.add(
            EvalResult(
                suite_name="smoke",
                suite_digest="d" * 64,
                target=f"{tiny}:1",
                target_kind="registry",
                version_id=v1.id,
                summary={"pass_rate": 0.75},
                cases=[],
            )
        )
        session.commit()
        return Registered(alpha_v1_id=v1.id)


def models(cast: Cast, project: str = "alpha") -> str:
    return f"/api/v1/projects/{cast.projects[project]}/models"


def test_list_and_detail_use_project_local_names(
    platform_client: TestClient, cast: Cast, registered: Registered
) -> None:
    listed = platform_client.get(models(cast), headers=cast.auth("viewer"))
    assert listed.status_code == 200, listed.text
    assert listed.json()["count"] == 1
    tiny = listed.json()["data"][0]
    assert tiny["name"] == "tiny" and [v["ref"] for v in tiny["versions"]] == ["tiny:1", "tiny:2"]
    assert "alpha." not in listed.text and "hidden" not in listed.text

    version = platform_client.get(f"{models(cast)}/tiny/versions/1", headers=cast.auth("viewer"))
    assert version.status_code == 200, version.text
    body = version.json()
    assert (body["name"], body["ref"], body["kind"]) == ("tiny", "tiny:1", "base")
    assert "config.json" in body["files"] and "path" not in body["source"]
    assert body["lineage"]["ref"] == "tiny:1"
    assert body["lineage"]["inputs"] == [{"kind": "dataset", "ref": "0123456789abcdef"}]
    children = sorted(child["ref"] for child in body["lineage"]["children"])
    assert children == sorted([HIDDEN, "tiny:2"])  # beta's model made from it is not named
    assert [(r["suite"], r["summary"]["pass_rate"]) for r in body["eval_results"]] == [("smoke", 0.75)]
    assert "beta" not in version.text and "alpha." not in version.text

    child = platform_client.get(f"{models(cast)}/tiny/versions/2", headers=cast.auth("viewer")).json()
    assert [(p["ref"], p["relation"]) for p in child["lineage"]["parents"]] == [("tiny:1", "base")]
    assert child["tags"] == {"stage": "tuned"} and child["eval_results"] == []


def test_another_projects_model_is_not_found(
    platform_client: TestClient, cast: Cast, registered: Registered
) -> None:
    for path in ("/hidden", "/hidden/versions/1", "/beta.hidden", "/tiny/versions/9"):
        response = platform_client.get(models(cast) + path, headers=cast.auth("owner"))
        assert response.status_code == 404, path
    assert platform_client.get(models(cast), headers=cast.auth("outsider")).status_code == 404
    beta = platform_client.get(models(cast, "beta"), headers=cast.auth("outsider")).json()
    assert [m["name"] for m in beta["data"]] == ["hidden"]
    lineage = platform_client.get(
        f"{models(cast, 'beta')}/hidden/versions/1", headers=cast.auth("outsider")
    ).json()
    assert [p["ref"] for p in lineage["lineage"]["parents"]] == [HIDDEN]
    moved = platform_client.put(
        f"{models(cast)}/hidden/aliases/prod", json={"ref": "1"}, headers=cast.auth("owner")
    )
    assert moved.status_code == 404


def test_aliases_set_move_and_unset(platform_client: TestClient, cast: Cast, registered: Registered) -> None:
    url = f"{models(cast)}/tiny/aliases/production"
    assert platform_client.put(url, json={"ref": "1"}, headers=cast.auth("viewer")).status_code == 403
    first = platform_client.put(url, json={"ref": "1", "reason": "first"}, headers=cast.auth("developer"))
    assert first.status_code == 200, first.text
    assert first.json() == {"name": "tiny", "alias": "production", "version": 1}
    moved = platform_client.put(url, json={"ref": "tiny:2"}, headers=cast.auth("developer"))
    assert moved.json()["version"] == 2
    detail = platform_client.get(f"{models(cast)}/tiny", headers=cast.auth("viewer")).json()
    assert detail["aliases"] == {"production": 2}
    v2 = platform_client.get(f"{models(cast)}/tiny/versions/2", headers=cast.auth("viewer")).json()
    assert v2["aliases"] == ["production"]
    by_alias = platform_client.put(
        f"{models(cast)}/tiny/aliases/staging",
        json={"ref": "tiny@production"},
        headers=cast.auth("developer"),
    )
    assert by_alias.json()["version"] == 2
    wrong = platform_client.put(url, json={"ref": "hidden:1"}, headers=cast.auth("developer"))
    assert wrong.status_code == 404  # beta's model is no ref alpha can use
    bad = platform_client.put(
        f"{models(cast)}/tiny/aliases/1bad", json={"ref": "1"}, headers=cast.auth("developer")
    )
    assert bad.status_code == 422
    extra = platform_client.put(url, json={"ref": "1", "force": True}, headers=cast.auth("developer"))
    assert extra.status_code == 422
    unset = platform_client.delete(url, headers=cast.auth("developer"))
    assert unset.status_code == 200 and unset.json()["version"] is None
    assert platform_client.delete(url, headers=cast.auth("developer")).status_code == 404
    detail = platform_client.get(f"{models(cast)}/tiny", headers=cast.auth("viewer")).json()
    assert detail["aliases"] == {"staging": 2}


def test_delete_version_is_for_admins_and_refuses_needed_versions(
    platform_client: TestClient, cast: Cast, registered: Registered
) -> None:
    v1, v2 = f"{models(cast)}/tiny/versions/1", f"{models(cast)}/tiny/versions/2"
    assert platform_client.delete(v2, headers=cast.auth("developer")).status_code == 403
    needed = platform_client.delete(v1, headers=cast.auth("admin"))
    assert needed.status_code == 409 and "depend" in needed.json()["error"]["message"]
    platform_client.put(
        f"{models(cast)}/tiny/aliases/prod", json={"ref": "2"}, headers=cast.auth("developer")
    )
    aliased = platform_client.delete(v2, headers=cast.auth("admin"))
    assert aliased.status_code == 409 and "prod" in aliased.json()["error"]["message"]
    platform_client.delete(f"{models(cast)}/tiny/aliases/prod", headers=cast.auth("developer"))
    deleted = platform_client.delete(v2, headers=cast.auth("admin"))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["ref"] == "tiny:2"
    assert platform_client.get(v2, headers=cast.auth("viewer")).status_code == 404
    remaining = platform_client.get(f"{models(cast)}/tiny", headers=cast.auth("viewer")).json()
    assert [v["version"] for v in remaining["versions"]] == [1]
    # beta's tiny-derived model still holds v1
    assert platform_client.delete(v1, headers=cast.auth("admin")).status_code == 409


def test_namespace_and_ownership_functions(platform_client: TestClient, cast: Cast, platform_db: str) -> None:
    with make_session_factory(platform_db)() as session:
        alpha, beta = (session.get(Project, cast.projects[p]) for p in ("alpha", "beta"))
        assert alpha is not None and beta is not None
        name = registry_name(alpha, "chat-bot.v2")
        assert name == "alpha.chat-bot.v2" and public_name(alpha, name) == "chat-bot.v2"
        with pytest.raises(InvalidInput):
            public_name(beta, name)
        with pytest.raises(InvalidInput):
            registry_name(alpha, "../x")
        with pytest.raises(InvalidInput):
            registry_name(alpha, "x" * 200)
        assert not model_belongs(session, alpha, name)
        claim_model(session, alpha, name)
        claim_model(session, alpha, name)  # idempotent
        assert model_belongs(session, alpha, name) and not model_belongs(session, beta, name)
        with pytest.raises(InvalidInput):
            claim_model(session, beta, name)  # outside beta's namespace
        with pytest.raises(InvalidInput):
            claim_model(session, alpha, "tiny")  # a global name is nobody's to claim
        session.commit()
    with pytest.raises(Conflict):
        _claim_foreign(platform_db, cast)


def _claim_foreign(platform_db: str, cast: Cast) -> None:
    """A claim row another project already holds (only possible by hand) is a conflict."""
    from largeforge.platform.models.orm import ProjectModel

    with make_session_factory(platform_db)() as session:
        alpha = session.get(Project, cast.projects["alpha"])
        assert alpha is not None
        session.add(ProjectModel(registry_name="alpha.stolen", project_id=cast.projects["beta"]))
        session.flush()
        claim_model(session, alpha, "alpha.stolen")
