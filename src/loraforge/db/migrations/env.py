"""Alembic environment: the URL comes from `config.attributes` (set by loraforge.db.migrate) or Settings.

Developers create a revision with:
    .venv/bin/python -c "from alembic import command; from loraforge.db.migrate import alembic_config; \
from loraforge.settings import get_settings; \
command.revision(alembic_config(get_settings().sqlalchemy_url), 'message', autogenerate=True)"
then read and edit the generated file before committing it.
"""

from alembic import context

from loraforge.db import models  # noqa: F401  (registers every table on Base.metadata)
from loraforge.db.base import Base
from loraforge.db.session import make_engine
from loraforge.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    return url if url else get_settings().sqlalchemy_url


def run_migrations_offline() -> None:
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_database_url())
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
