-- moodstream: PostgreSQL database and roles for a production server.
--
-- Two roles (DESIGN.md "Postgres"):
--   * the writer (default moodstream_writer) owns the schema: it runs `moodstream db upgrade` and the pipeline;
--   * the reader (default moodstream_reader) is what Grafana and analysts log in as: SELECT on the public
--     tables and views only (stores, cameras, emotion_counts, frame_losses, zone_visits, emotion_counts_v,
--     branch_daily_v),
--     no INSERT/UPDATE/DELETE, no CREATE, no access to internal tables (applied_frames, alembic_version).
--
-- Run once as a superuser (or a role with CREATEROLE and CREATEDB); passwords come from the environment,
-- never from this file:
--
--   psql "postgresql://postgres@db-host/postgres" \
--        -v writer_password="$MOODSTREAM_WRITER_PASSWORD" \
--        -v reader_password="$MOODSTREAM_READER_PASSWORD" \
--        -f deploy/postgres/roles.sql
--
-- Optional variables (defaults in brackets): -v dbname=[moodstream] -v writer=[moodstream_writer]
-- -v reader=[moodstream_reader]. Then, as the writer:
--
--   MOODSTREAM_DATABASE_URL=postgresql://moodstream_writer:...@db-host/moodstream moodstream db upgrade
--
-- The migrations grant the reader SELECT on the public tables and views, and again on every view they
-- recreate (the reader role must exist first, as created here). `moodstream db create-reader` does the same from the CLI when the
-- writer may create roles. Running this file again is harmless: it only creates what is missing and
-- resets the two passwords.
--
-- Note: a password in CREATE/ALTER ROLE may appear in the server log when log_statement = 'all' or 'ddl';
-- switch that off (SET log_statement = 'none' as superuser) before running this file on such a server.

\set ON_ERROR_STOP on
\if :{?dbname}
\else
  \set dbname moodstream
\endif
\if :{?writer}
\else
  \set writer moodstream_writer
\endif
\if :{?reader}
\else
  \set reader moodstream_reader
\endif

-- roles (LOGIN, password from the -v variables); created when missing, password reset otherwise
SELECT format('CREATE ROLE %I LOGIN', :'writer')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'writer') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'reader')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'reader') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'writer', :'writer_password') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L NOCREATEDB NOCREATEROLE', :'reader', :'reader_password') \gexec

-- the database, owned by the writer
SELECT format('CREATE DATABASE %I OWNER %I', :'dbname', :'writer')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname') \gexec

\connect :dbname

-- nobody but the writer creates objects; the reader may connect and look up names in schema public
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'dbname') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'dbname', :'writer') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'dbname', :'reader') \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SELECT format('GRANT USAGE, CREATE ON SCHEMA public TO %I', :'writer') \gexec
SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'reader') \gexec

-- when the schema already exists (this file run after `moodstream db upgrade`): grant the reader now
SELECT format('GRANT SELECT ON %I TO %I', t, :'reader')
  FROM unnest(ARRAY['stores', 'cameras', 'emotion_counts', 'frame_losses', 'zone_visits', 'emotion_counts_v', 'branch_daily_v']) AS t
 WHERE to_regclass(t) IS NOT NULL \gexec
