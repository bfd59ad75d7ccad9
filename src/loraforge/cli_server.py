"""Server-side sub-commands of `loraforge`: serve, migrate, admin create-user, openapi, settings-doc."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from loraforge.db.models import ROLE_VALUES, Role
from loraforge.services.accounts import passwords
from loraforge.settings import get_settings
from loraforge.settings_doc import settings_markdown_table


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="Run the web server (applies database migrations first).")
    serve.add_argument("--host", default=None, help="Bind address (default: LORAFORGE_HOST or 127.0.0.1).")
    serve.add_argument("--port", type=int, default=None, help="Port (default: LORAFORGE_PORT or 8000).")
    serve.set_defaults(handler=_serve)

    migrate = sub.add_parser("migrate", help="Apply database migrations up to the newest.")
    migrate.set_defaults(handler=_migrate)

    admin = sub.add_parser("admin", help="Administration commands.")
    admin_sub = admin.add_subparsers(dest="admin_command", metavar="ADMIN_COMMAND", required=True)
    create = admin_sub.add_parser("create-user", help="Create a user (prompting for the password).")
    create.add_argument("username")
    create.add_argument("--email", required=True)
    create.add_argument("--role", choices=ROLE_VALUES, default=Role.researcher.value)
    create.add_argument(
        "--password-stdin", action="store_true", help="Read the password from the first line of stdin."
    )
    create.set_defaults(handler=_create_user)

    openapi = sub.add_parser("openapi", help="Print the API's OpenAPI document (JSON) to stdout.")
    openapi.set_defaults(handler=_openapi)

    settings_doc = sub.add_parser("settings-doc", help="Print a markdown table of every LORAFORGE_* setting.")
    settings_doc.set_defaults(handler=_settings_doc)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from loraforge.api import connection_limits, proxies
    from loraforge.app import create_app
    from loraforge.db.migrate import migrate

    settings = get_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    # The app must know where it really listens: the outbound policy refuses the server's own address.
    settings = settings.model_copy(update={"host": host, "port": port})
    # Migrate before binding so a broken database fails the command, not the first request.
    migrate(settings.sqlalchemy_url)
    # Proxy trust is explicit, the app's own rule (api/proxies.py): uvicorn's default would believe
    # X-Forwarded-For from 127.0.0.1.
    trusted = proxies.parse(settings.trusted_proxies)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted.entries) or None,
        # A deadline and a size cap for every request head: api/connection_limits.py.
        **connection_limits.server_options(settings),
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from loraforge.db.migrate import head_revision, migrate

    settings = get_settings()
    migrate(settings.sqlalchemy_url)
    print(f"database at revision {head_revision()}")
    return 0


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        print("error: passwords do not match", file=sys.stderr)
        return None
    return first


def _create_user(args: argparse.Namespace) -> int:
    from loraforge.db.migrate import migrate
    from loraforge.db.session import Database
    from loraforge.errors import ServiceError
    from loraforge.services.accounts import users

    password = _read_password(args)
    if password is None:
        return 2
    settings = get_settings()
    passwords.configure_from(settings)
    migrate(settings.sqlalchemy_url)
    database = Database(settings.sqlalchemy_url)
    try:
        with database.session() as session:
            user = users.create_user(
                session, username=args.username, email=args.email, password=password, role=Role(args.role)
            )
            print(f"created user {user.username} (id {user.id}, role {user.role})")
    except ServiceError as exc:
        problems = "; ".join(f"{issue.field}: {issue.message}" for issue in exc.fields) or exc.message
        print(f"error: {problems}", file=sys.stderr)
        return 1
    finally:
        database.dispose()
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from loraforge.app import create_app
    from loraforge.settings import Settings

    # Default settings: the document must not depend on this machine's environment or database.
    document = create_app(Settings(production=False)).openapi()
    json.dump(document, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    return 0


def _settings_doc(args: argparse.Namespace) -> int:
    sys.stdout.write(settings_markdown_table())
    return 0
