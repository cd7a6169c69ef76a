-- PostgreSQL roles for Rapport: the application cannot alter or erase the audit trail (HIPAA 164.312(b)).
--
-- Two roles:
--   rapport_owner  owns the schema. Only `rapport db upgrade` connects as it (RAPPORT_DATABASE_URL for that one
--                  command). It owns audit_events, so it alone could drop its triggers: keep its password offline.
--   rapport_app    what the web, worker and beat processes connect as. It may INSERT and SELECT audit rows and
--                  nothing else on audit_events: no UPDATE, DELETE or TRUNCATE, and, not owning the table, no
--                  ALTER TABLE ... DISABLE TRIGGER. Every other table it may read and write.
-- Besides the grants, triggers on audit_events (migrations 0001 and 0012) refuse UPDATE, DELETE and TRUNCATE even
-- for the owner, and each row carries a hash chain that `rapport audit verify` (and a nightly job) checks.
--
-- Set up, as a superuser, once:
--   CREATE ROLE rapport_owner LOGIN PASSWORD '...';
--   CREATE ROLE rapport_app LOGIN PASSWORD '...';
--   CREATE DATABASE rapport OWNER rapport_owner;
-- then `rapport db upgrade` as rapport_owner, then this file as a superuser or rapport_owner, in that database:
--   psql -d rapport -f infra/postgres/roles.sql
-- Run it again after every upgrade that adds tables (the default privileges below cover most cases anyway).
-- tests/integration/test_audit_grants_pg.py runs this file and checks every refusal.

REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO rapport_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO rapport_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO rapport_app;
ALTER DEFAULT PRIVILEGES FOR ROLE rapport_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO rapport_app;
ALTER DEFAULT PRIVILEGES FOR ROLE rapport_owner IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO rapport_app;

-- The audit trail: append and read only.
REVOKE ALL ON audit_events FROM rapport_app;
GRANT SELECT, INSERT ON audit_events TO rapport_app;
-- The chain's head row is updated by every append (services.audit.chain); it holds no history of its own.
GRANT SELECT, UPDATE ON audit_chain TO rapport_app;
-- Alembic's bookkeeping is the owner's.
REVOKE ALL ON alembic_version FROM rapport_app;
GRANT SELECT ON alembic_version TO rapport_app;
