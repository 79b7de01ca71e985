"""Per-service Postgres roles, least privilege (ARCHITECTURE §7), from ``DB_ROLES``.

:func:`provision` runs as a superuser (or a role with CREATEROLE that owns the database)
and is idempotent: the dev stack runs it at every start, with fresh passwords.

* every service role logs in with a password (stored as a SCRAM verifier), is no
  superuser, cannot create roles or databases, cannot bypass row-level security, and
  has ``search_path = public`` pinned (no schema it could be tricked into first);
* it may connect to the database and create in schema ``public`` (the projection
  library creates its tables at start, ``CREATE SCHEMA IF NOT EXISTS`` included); what it
  creates it owns, and nobody else may read or write it: ``PUBLIC`` has no privilege on
  the database or the schema;
* tables of a service that already exist (a data dir from an earlier run) are handed to
  its role; reads across services are explicit grants (the gateway reads billing's
  balances), including on tables created later (default privileges);
* the shared bookkeeping tables are created here, owned by the group role every service
  role is in, with row-level security forced on: a role reads every row (a gateway waits
  on the ledger's checkpoint) but writes only its own projections' rows. Being in the
  owning group is what the projection library's idempotent DDL needs, and it would also
  let a role switch those policies off: an event trigger refuses any change to these
  tables, their policies, triggers and rules to everyone but a superuser, and a trigger
  refuses ``TRUNCATE`` (which row-level security does not cover).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from puras_cli.infra.postgres import scram_verifier
from puras_common.db import DB_ROLES, PROJECTOR_GROUP, SHARED_TABLES, quote_ident

__all__ = ["provision", "provision_roles_sync", "provision_statements", "role_url"]


def role_url(dsn: str, role: str) -> str:
    """``dsn`` (host, port, database) with ``role`` as its user and no password."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


def database_of(dsn: str) -> str:
    name = unquote(urlsplit(dsn).path.lstrip("/"))
    if not name:
        raise ValueError("the database URL names no database")
    return name


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ensure_role(role: str, *, login: bool) -> str:
    kind = "LOGIN" if login else "NOLOGIN"
    return (
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(role)}) THEN "
        f"CREATE ROLE {quote_ident(role)} {kind}; END IF; END $$"
    )


_GUARD_FN = "public.puras_guard_shared_tables"


def _guard_statements() -> list[str]:
    # Table names are ours (SHARED_TABLES), quoted as literals; no input reaches this.
    idents = ", ".join(_literal(f"public.{t}") for t in SHARED_TABLES)
    ddl_guard = f"""
CREATE OR REPLACE FUNCTION {_GUARD_FN}() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  r record;
  guarded oid[] := ARRAY(SELECT to_regclass(t) FROM unnest(ARRAY[{idents}]) AS t);
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN RETURN; END IF;
  IF TG_EVENT = 'sql_drop' THEN
    FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
      IF (r.object_type = 'table' AND r.object_identity = ANY(ARRAY[{idents}]))
         OR (r.object_type IN ('policy', 'trigger', 'rule')
             AND split_part(r.object_identity, ' on ', 2) = ANY(ARRAY[{idents}])) THEN
        RAISE EXCEPTION 'puras: only the database owner may drop %', r.object_identity;
      END IF;
    END LOOP;
    RETURN;
  END IF;
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
    IF (r.classid = 'pg_class'::regclass AND r.objid = ANY(guarded))
       OR (r.classid = 'pg_policy'::regclass
           AND (SELECT polrelid FROM pg_policy WHERE oid = r.objid) = ANY(guarded))
       OR (r.classid = 'pg_trigger'::regclass
           AND (SELECT tgrelid FROM pg_trigger WHERE oid = r.objid) = ANY(guarded))
       OR (r.classid = 'pg_rewrite'::regclass
           AND (SELECT ev_class FROM pg_rewrite WHERE oid = r.objid) = ANY(guarded)) THEN
      RAISE EXCEPTION 'puras: only the database owner may change %', r.object_identity;
    END IF;
  END LOOP;
END $fn$"""  # noqa: S608
    truncate_guard = """
CREATE OR REPLACE FUNCTION public.puras_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN RETURN NULL; END IF;
  RAISE EXCEPTION 'puras: only the database owner may truncate %', TG_TABLE_NAME;
END $fn$"""
    out = [
        ddl_guard,
        truncate_guard,
        "REVOKE ALL ON FUNCTION public.puras_refuse_truncate() FROM PUBLIC",
        "DROP EVENT TRIGGER IF EXISTS puras_guard_shared_ddl",
        "DROP EVENT TRIGGER IF EXISTS puras_guard_shared_drop",
        f"CREATE EVENT TRIGGER puras_guard_shared_ddl ON ddl_command_end "
        f"EXECUTE FUNCTION {_GUARD_FN}()",
        f"CREATE EVENT TRIGGER puras_guard_shared_drop ON sql_drop EXECUTE FUNCTION {_GUARD_FN}()",
    ]
    for table in SHARED_TABLES:
        out += [
            f"DROP TRIGGER IF EXISTS puras_refuse_truncate ON public.{quote_ident(table)}",
            f"CREATE TRIGGER puras_refuse_truncate BEFORE TRUNCATE ON public.{quote_ident(table)} "
            "FOR EACH STATEMENT EXECUTE FUNCTION public.puras_refuse_truncate()",
        ]
    return out


def provision_statements(database: str, password_sql: Mapping[str, str]) -> list[str]:
    """The SQL of :func:`provision` for ``database``. ``password_sql`` gives, by service
    name, the SQL after ``PASSWORD``: a quoted SCRAM verifier, or a psql variable."""
    from puras_common.projection.quarantine import QUARANTINE_DDL
    from puras_common.projection.runner import CHECKPOINT_DDL

    missing = set(DB_ROLES) - set(password_sql)
    if missing:
        raise ValueError(f"no password for the Postgres roles of {sorted(missing)}")
    db = quote_ident(database)
    group = quote_ident(PROJECTOR_GROUP)
    out = [
        _ensure_role(PROJECTOR_GROUP, login=False),
        f"REVOKE ALL ON DATABASE {db} FROM PUBLIC",
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        "SET search_path TO public",
        CHECKPOINT_DDL,
        QUARANTINE_DDL,
    ]
    out += _guard_statements()
    for table in SHARED_TABLES:
        out += [
            f"ALTER TABLE public.{quote_ident(table)} OWNER TO {group}",
            f"ALTER TABLE public.{quote_ident(table)} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE public.{quote_ident(table)} FORCE ROW LEVEL SECURITY",
            f"DROP POLICY IF EXISTS puras_read ON public.{quote_ident(table)}",
            f"CREATE POLICY puras_read ON public.{quote_ident(table)} FOR SELECT USING (true)",
        ]
    for r in DB_ROLES.values():
        role = quote_ident(r.role)
        out += [
            _ensure_role(r.role, login=True),
            f"ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            f"NOBYPASSRLS INHERIT PASSWORD {password_sql[r.service]}",
            f"ALTER ROLE {role} SET search_path TO public",
            f"GRANT {group} TO {role}",
            f"GRANT CONNECT, CREATE ON DATABASE {db} TO {role}",
            f"GRANT USAGE, CREATE ON SCHEMA public TO {role}",
        ]
        mine = "ARRAY[" + ", ".join(_literal(p) for p in r.projections) + "]::text[]"
        for table, column in SHARED_TABLES.items():
            policy = quote_ident(f"{r.role}_rows")
            out += [
                f"DROP POLICY IF EXISTS {policy} ON public.{quote_ident(table)}",
                f"CREATE POLICY {policy} ON public.{quote_ident(table)} FOR ALL TO {role} "
                f"USING ({quote_ident(column)} = ANY ({mine})) "
                f"WITH CHECK ({quote_ident(column)} = ANY ({mine}))",
            ]
        for table in r.tables:
            out.append(
                "DO $$ BEGIN "
                f"IF to_regclass({_literal('public.' + table)}) IS NOT NULL THEN "
                f"ALTER TABLE public.{quote_ident(table)} OWNER TO {role}; END IF; END $$"
            )
    for r in DB_ROLES.values():
        for other in r.reads:
            owner = DB_ROLES[other]
            out.append(
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote_ident(owner.role)} IN SCHEMA public "
                f"GRANT SELECT ON TABLES TO {quote_ident(r.role)}"
            )
            for table in owner.tables:
                out.append(
                    "DO $$ BEGIN "
                    f"IF to_regclass({_literal('public.' + table)}) IS NOT NULL THEN "
                    f"GRANT SELECT ON public.{quote_ident(table)} TO {quote_ident(r.role)}; "
                    "END IF; END $$"
                )
    return out


async def provision(dsn: str, database: str, passwords: Mapping[str, str]) -> None:
    """Create or update every service role for ``database`` (``dsn`` connects to it)."""
    conn = await asyncpg.connect(dsn)
    try:
        # Roles are cluster-wide: two stacks provisioning one server at once would race
        # on CREATE ROLE, so take a lock for the whole step.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('puras-pg-roles'))")
            verifiers = {s: _literal(scram_verifier(p)) for s, p in passwords.items()}
            for stmt in provision_statements(database, verifiers):
                await conn.execute(stmt)
    finally:
        await conn.close()


def provision_roles_sync(dsn: str, passwords: Mapping[str, str]) -> None:
    """:func:`provision` for the database ``dsn`` names, from synchronous code. Errors
    become :class:`RuntimeError` without the DSN (it carries a password)."""
    try:
        asyncio.run(provision(dsn, database_of(dsn), passwords))
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None


def psql_script(database: str) -> str:
    """The provisioning as a psql script: each role's password is the psql variable
    ``<service>_password`` (``psql -v gateway_password=...``), so the script holds none.
    Postgres hashes it (SCRAM) as it stores it."""
    stmts = provision_statements(database, {s: f":'{s}_password'" for s in DB_ROLES})
    head = (
        "-- Generated by `python -m puras_cli.infra.pg_roles --write-k8s`: do not edit.\n"
        "-- The services' Postgres roles (puras_common.db.DB_ROLES), idempotent.\n"
        "\\set ON_ERROR_STOP on\n"
        "BEGIN;\n"
    )
    return head + "".join(f"{s.strip().rstrip(';')};\n" for s in stmts) + "COMMIT;\n"


K8S_ROLES_SQL = "deploy/k8s/postgres/roles.sql"


def main(argv: list[str] | None = None) -> int:
    """``python -m puras_cli.infra.pg_roles``: provision the roles of an existing database
    (owner DSN in ``PURAS_PG_OWNER_DSN``, each password in
    ``PURAS_<SERVICE>_DATABASE_PASSWORD``), or write/check the Kubernetes psql script."""
    parser = argparse.ArgumentParser(prog="python -m puras_cli.infra.pg_roles")
    parser.add_argument("database", nargs="?", default="puras")
    parser.add_argument("--write-k8s", type=Path, metavar="ROLES_SQL")
    parser.add_argument("--check-k8s", type=Path, metavar="ROLES_SQL")
    args = parser.parse_args(argv)
    if args.write_k8s is not None:
        args.write_k8s.write_text(psql_script(args.database))
        return 0
    if args.check_k8s is not None:
        return 0 if args.check_k8s.read_text() == psql_script(args.database) else 1
    dsn = os.environ["PURAS_PG_OWNER_DSN"]
    passwords = {s: os.environ[f"PURAS_{s.upper()}_DATABASE_PASSWORD"] for s in DB_ROLES}
    asyncio.run(provision(dsn, args.database, passwords))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
