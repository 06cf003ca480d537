-- moodstream: PostgreSQL database and roles for a production server.
--
-- Two roles (DESIGN.md "Postgres"):
--   * the writer (default moodstream_writer) owns the schema: it runs `moodstream db upgrade` and the pipeline;
--   * the reader (default moodstream_reader) is what Grafana and analysts log in as: SELECT on stores, cameras,
--     frame_losses, opening_hours and the suppressing views (camera_activity_v, camera_status_v,
--     store_hourly_v, store_daily_v, and the functions store_hours(from, to) and store_is_open(store, at))
--     only: no raw emotion_counts or zone_visits, no emotion_counts_v / branch_daily_v (the writer's
--     unsuppressed views), no privacy_settings, no INSERT/UPDATE/DELETE, no CREATE, no internal tables (applied_frames,
--     alembic_version). At most 20 sessions; every statement cancelled after 30 s.
--
-- Run once as a superuser (or a role with CREATEROLE and CREATEDB); passwords come from the environment,
-- never from this file (and, read with \getenv, never from a command line either):
--
--   MOODSTREAM_WRITER_PASSWORD=... MOODSTREAM_READER_PASSWORD=... \
--   psql "postgresql://postgres@db-host/postgres" -f deploy/postgres/roles.sql
--
-- (-v writer_password=... -v reader_password=... work too.) deploy/docker-compose.yml runs this file through
-- deploy/postgres/initdb.sh when its postgres container starts on an empty data directory.
--
-- Optional variables (defaults in brackets): -v dbname=[moodstream] -v writer=[moodstream_writer]
-- -v reader=[moodstream_reader]. Then, as the writer:
--
--   MOODSTREAM_DATABASE_URL=postgresql://moodstream_writer:...@db-host/moodstream moodstream db upgrade
--
-- The migrations grant the reader SELECT on the public tables and views, and again on every view they
-- recreate (the reader role must exist first, as created here); 0003 takes the raw counts away from it.
-- `moodstream db create-reader` does the same from the CLI when the writer may create roles. Running this file again is harmless: it only creates what is missing and
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
-- passwords not given with -v are read from the environment (psql 15+), so they need no command line
\if :{?writer_password}
\else
  \getenv writer_password MOODSTREAM_WRITER_PASSWORD
\endif
\if :{?reader_password}
\else
  \getenv reader_password MOODSTREAM_READER_PASSWORD
\endif

-- roles (LOGIN, password from the -v variables); created when missing, password reset otherwise
SELECT format('CREATE ROLE %I LOGIN', :'writer')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'writer') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'reader')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'reader') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'writer', :'writer_password') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L NOCREATEDB NOCREATEROLE', :'reader', :'reader_password') \gexec
-- the reader's limits (as `moodstream db create-reader` sets them: moodstream/runtime/database.py)
SELECT format('ALTER ROLE %I CONNECTION LIMIT 20', :'reader') \gexec
SELECT format('ALTER ROLE %I SET statement_timeout = %L', :'reader', '30s') \gexec
SELECT format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', :'reader', '60s') \gexec

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
  FROM unnest(ARRAY['stores', 'cameras', 'frame_losses', 'opening_hours', 'camera_activity_v', 'camera_status_v',
                    'store_hourly_v', 'store_daily_v']) AS t
 WHERE to_regclass(t) IS NOT NULL \gexec
SELECT format('GRANT EXECUTE ON FUNCTION %s TO %I', f, :'reader')
  FROM unnest(ARRAY['store_hours(timestamptz, timestamptz)', 'store_is_open(text, timestamptz)']) AS f
 WHERE to_regprocedure(f) IS NOT NULL \gexec
SELECT format('REVOKE ALL ON %I FROM %I', t, :'reader')
  FROM unnest(ARRAY['emotion_counts', 'zone_visits', 'emotion_counts_v', 'branch_daily_v', 'privacy_settings',
                    'applied_frames']) AS t
 WHERE to_regclass(t) IS NOT NULL \gexec
