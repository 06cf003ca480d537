#!/bin/sh
# Start redis-server with moodstream's ACL users (moodstream.acl next to this script), each user's
# password taken from the environment and written only as its SHA-256 hash into a private ACL file:
#
#   REDIS_PASSWORD=... REDIS_WORKER_PASSWORD=... sh entrypoint.sh --appendonly yes ...
#
# Every argument is passed on to redis-server. MOODSTREAM_ACL_RULES (the rules file) and
# MOODSTREAM_ACL_FILE (the generated ACL file, default /tmp/moodstream-users.acl) may be overridden.
set -eu
here=$(dirname "$0")
rules="${MOODSTREAM_ACL_RULES:-$here/moodstream.acl}"
out="${MOODSTREAM_ACL_FILE:-/tmp/moodstream-users.acl}"
: "${REDIS_PASSWORD:?set REDIS_PASSWORD (the operator user default)}"
: "${REDIS_WORKER_PASSWORD:?set REDIS_WORKER_PASSWORD (the pipeline user moodstream)}"

sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

umask 077
: > "$out"
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in '' | '#'*) continue ;; esac
  name=$(printf '%s\n' "$line" | awk '{print $2}')
  case "$name" in
    default) password="$REDIS_PASSWORD" ;;
    moodstream) password="$REDIS_WORKER_PASSWORD" ;;
    edge) password="${REDIS_EDGE_PASSWORD:?set REDIS_EDGE_PASSWORD (the store boxes' user edge, deploy/edge/center.acl)}" ;;
    *) echo "entrypoint.sh: no password variable for Redis user '$name' in $rules" >&2; exit 1 ;;
  esac
  printf '%s resetpass #%s\n' "$line" "$(sha256 "$password")" >> "$out"
done < "$rules"
exec redis-server "$@" --aclfile "$out"
