#!/bin/sh
# First start of the postgres container (mounted into /docker-entrypoint-initdb.d by docker-compose.yml,
# run once, on an empty data directory, as the superuser): create the writer and reader roles of
# roles.sql. Names and passwords come from the container's environment (MOODSTREAM_WRITER_USER,
# MOODSTREAM_WRITER_PASSWORD, MOODSTREAM_READER_USER, MOODSTREAM_READER_PASSWORD); roles.sql reads the
# passwords with \getenv, so they appear on no command line.
set -eu
: "${MOODSTREAM_WRITER_PASSWORD:?set MOODSTREAM_WRITER_PASSWORD}"
: "${MOODSTREAM_READER_PASSWORD:?set MOODSTREAM_READER_PASSWORD}"
psql --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
  -v dbname="${POSTGRES_DB:-moodstream}" \
  -v writer="${MOODSTREAM_WRITER_USER:-moodstream_writer}" \
  -v reader="${MOODSTREAM_READER_USER:-moodstream_reader}" \
  -f /etc/moodstream/roles.sql
