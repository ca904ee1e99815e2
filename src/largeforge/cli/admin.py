"""``largeforge admin``: operator commands that talk to the control plane's database directly.

They work with no server running (the first admin user is made this way) and act on whatever database
LARGEFORGE_DATABASE_URL (or the SQLite file under LARGEFORGE_HOME) names. Errors print one line and
exit 1; usage errors exit 2; never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from largeforge.cli.output import JSON_OPTION, run_command, stderr_console
from largeforge.errors import InvalidInput, LargeForgeError, NotFound, Unavailable

app = typer.Typer(help="Operator commands on the control plane's database: users, keys, audit log.")


@contextmanager
def _database() -> Iterator[Session]:
    """A session on the configured database, committed on success; connection errors become one line."""
    from largeforge.db import session_scope
    from largeforge.settings import get_settings

    url = get_settings().resolved_database_url()
    try:
        with session_scope(url) as session:
            yield session
    except OperationalError as exc:
        from sqlalchemy.engine import make_url

        shown = make_url(url).render_as_string(hide_password=True)
        raise Unavailable(
            f"cannot use the database {shown}: {exc.orig}; check LARGEFORGE_DATABASE_URL"
        ) from exc


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
        if not password:
            raise InvalidInput(
                "--password-stdin: stdin was empty; pipe the password in (echo … | largeforge …)"
            )
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command("create-user")
def create_user(
    email: str = typer.Argument(..., help="The user's email (their login name)."),
    admin: bool = typer.Option(False, "--admin", help="Make a global admin (all projects, user management)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin instead of prompting (scripts)."
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Create a user; the password comes from a hidden prompt (asked twice) or from stdin."""
    from largeforge.platform.auth.service import AuthService

    def action() -> dict[str, Any]:
        password = _read_password(password_stdin)
        with _database() as session:
            user = AuthService(session).create_user(email, password, is_admin=admin)
            return {"id": user.id, "email": user.email, "is_admin": user.is_admin}

    def render(user: dict[str, Any]) -> None:
        kind = "global admin" if user["is_admin"] else "user"
        typer.echo(f"created {kind} {user['email']} (id {user['id']})")

    run_command(json_output, action, render=render, to_json=lambda user: user)


@app.command("create-key")
def create_key(
    email: str = typer.Argument(..., help="Whose key it is."),
    project: str | None = typer.Option(
        None, "--project", help="Scope the key to this project (name or id); needs --role."
    ),
    role: str | None = typer.Option(
        None, "--role", help="Most the key may do in --project: viewer, developer, admin or owner."
    ),
    name: str = typer.Option("admin-cli", "--name", help="A label shown in key lists."),
    requests_per_minute: int | None = typer.Option(
        None,
        "--rpm",
        min=0,
        help="Requests/min for this key (default: LARGEFORGE_RATE_LIMIT_RPM; 0 = unlimited).",
    ),
    tokens_per_minute: int | None = typer.Option(
        None,
        "--tpm",
        min=0,
        help="Model tokens/min for this key (default: LARGEFORGE_RATE_LIMIT_TPM; 0 = unlimited).",
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Create an API key and print it once: only its hash is stored, it cannot be shown again."""
    from largeforge.platform.auth.repository import AuthRepository
    from largeforge.platform.auth.service import AuthService
    from largeforge.platform.deps import find_project
    from largeforge.platform.projects.orm import Membership
    from largeforge.platform.projects.roles import Role

    def action() -> dict[str, Any]:
        if (project is None) != (role is None):
            raise InvalidInput("--project and --role go together: give both to scope the key, or neither")
        with _database() as session:
            user = AuthRepository(session).user_by_email(email.strip())
            if user is None:
                raise NotFound(f"no user {email}; create it first: largeforge admin create-user {email}")
            project_id, scope_role = None, None
            if project is not None and role is not None:
                found = find_project(session, project)
                if found is None:
                    raise NotFound(f"no project {project!r} (give its name or id)")
                if session.get(Membership, (found.id, user.id)) is None:
                    raise InvalidInput(
                        f"{user.email} is not a member of project {found.name}: a key scoped there would "
                        "reach nothing; add them to the project first"
                    )
                project_id, scope_role = found.id, Role.parse(role)
            created = AuthService(session).create_key(
                user,
                name,
                project_id=project_id,
                role=scope_role,
                requests_per_minute=requests_per_minute,
                tokens_per_minute=tokens_per_minute,
            )
            return {
                "id": created.key.id,
                "prefix": created.key.prefix,
                "user": user.email,
                "project_id": project_id,
                "role": scope_role.value if scope_role else None,
                "key": created.secret,
            }

    def render(doc: dict[str, Any]) -> None:
        scope = (
            f"project {project}, role {doc['role']}" if doc["project_id"] else "all of the user's projects"
        )
        stderr_console().print(
            f"API key {doc['prefix']} for {doc['user']} ({scope}); shown once, store it now:", highlight=False
        )
        typer.echo(doc["key"])  # alone on stdout: KEY=$(largeforge admin create-key …)

    run_command(json_output, action, render=render, to_json=lambda doc: doc)


@app.command("verify-audit")
def verify_audit(json_output: bool = JSON_OPTION) -> None:
    """Check the audit log's hash chain: exit 0 when intact, 1 naming the first changed or missing entry."""
    from largeforge.platform.audit.service import VerifyReport, verify_chain

    def action() -> VerifyReport:
        with _database() as session:
            report = verify_chain(session)
        if not report.ok:
            where = f"entry {report.first_bad_seq}" if report.first_bad_seq is not None else "its end"
            raise AuditTampered(
                f"audit log broken at {where}: {report.problem} ({report.entries} entries checked)",
                report,
            )
        return report

    def render(report: VerifyReport) -> None:
        typer.echo(f"audit log intact: {report.entries} entries, every hash and link checks out")

    run_command(
        json_output,
        action,
        render=render,
        to_json=lambda report: {"ok": True, "entries": report.entries},
    )


class AuditTampered(LargeForgeError):
    """The chain does not verify (exit 1); ``--json`` carries the first bad sequence number."""

    code = "audit_tampered"

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["error"].update(ok=False, entries=self.report.entries, first_bad_seq=self.report.first_bad_seq)
        return body
