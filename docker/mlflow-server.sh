#!/usr/bin/env sh
# The MLflow server of the team stack, in one place: docker-compose.yml runs this script in the
# mlflow container, and the tests run the very same script against a local PostgreSQL and S3 endpoint.
#   metadata  -> PostgreSQL (--backend-store-uri)
#   artifacts -> S3 / MinIO (--artifacts-destination), proxied by the server (--serve-artifacts), so
#                clients need no S3 credentials
#   accounts  -> MLflow's basic-auth app (MLFLOW_AUTH=1, the default), its users and permissions in the same
#                PostgreSQL database; the first admin is `admin` with MLFLOW_AUTH_ADMIN_PASSWORD
# Settings come from the environment (see .env.example; `python3 scripts/new_env.py` writes a .env with fresh
# secrets). MLFLOW_ALLOWED_HOSTS widens the Host headers MLflow accepts (default: localhost and private addresses).
# It refuses to start, with one line, on settings that would let anyone in:
#   - a value still holding its example text `change-me...` (any variable it is given);
#   - authentication off (MLFLOW_AUTH=0) while the server is reachable beyond this machine (BIND_ADDRESS, the
#     address the compose file publishes the port on, else MLFLOW_HOST, is not a loopback address);
#   - no MLFLOW_FLASK_SERVER_SECRET_KEY (the key of MLflow's sessions and CSRF tokens, the same for every worker).
set -eu
refuse() { echo "mlflow-server.sh: refusing to start: $*" >&2; exit 1; }
. "$(dirname "$0")/refuse-examples.sh"
: "${POSTGRES_USER:?set POSTGRES_USER}" "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" "${POSTGRES_DB:?set POSTGRES_DB}"
: "${MLFLOW_BUCKET:?set MLFLOW_BUCKET}" "${MLFLOW_S3_ENDPOINT_URL:?set MLFLOW_S3_ENDPOINT_URL}"
[ -n "${MLFLOW_FLASK_SERVER_SECRET_KEY:-}" ] ||
  refuse "MLFLOW_FLASK_SERVER_SECRET_KEY is not set: MLflow signs its sessions and CSRF tokens with it" \
         "(a long random string, the same for every worker; \`python3 scripts/new_env.py\` writes one)"
reachable_at="${BIND_ADDRESS:-${MLFLOW_HOST:-0.0.0.0}}"
case "${MLFLOW_AUTH:-1}" in
  1) ;;
  0) case "$reachable_at" in
       127.*|localhost|::1|"[::1]") ;;
       *) refuse "MLFLOW_AUTH=0 (no login) while the server is reachable at $reachable_at, beyond this machine:" \
                 "set MLFLOW_AUTH=1, or BIND_ADDRESS=127.0.0.1" ;;
     esac ;;
  *) refuse "MLFLOW_AUTH is '${MLFLOW_AUTH}': 1 (accounts, the default) or 0 (no login, on 127.0.0.1 only)" ;;
esac
# MLflow's job execution (a job runner and a huey consumer, for GenAI scorers and trace rollups) serves nothing here
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
database="postgresql://${POSTGRES_USER}:${POSTGRES_PASSWORD}@${POSTGRES_HOST:-postgres}:${POSTGRES_PORT:-5432}/${POSTGRES_DB}"
set -- mlflow server \
  --backend-store-uri "$database" \
  --artifacts-destination "s3://${MLFLOW_BUCKET}/mlartifacts" \
  --serve-artifacts \
  --host "${MLFLOW_HOST:-0.0.0.0}" \
  --port "${MLFLOW_PORT:-5000}" \
  --workers "${MLFLOW_WORKERS:-2}"
if [ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]; then set -- "$@" --allowed-hosts "$MLFLOW_ALLOWED_HOSTS"; fi
if [ "${MLFLOW_AUTH:-1}" = "1" ]; then
  : "${MLFLOW_AUTH_ADMIN_PASSWORD:?MLFLOW_AUTH=1 needs MLFLOW_AUTH_ADMIN_PASSWORD, the first admin password}"
  # The auth app's settings (it reads no command-line options): users and permissions in the tracking database
  # (one backup holds both); every account reads what it is not granted more on (default_permission READ; only the
  # admin creates accounts); a checked password is remembered for 60 s in each worker, as MLflow's hash is
  # deliberately slow (a changed or deleted password may work that long on another worker).
  export MLFLOW_AUTH_CONFIG_PATH="$PWD/basic_auth.ini"
  (umask 077 && cat > "$MLFLOW_AUTH_CONFIG_PATH" <<EOF
[mlflow]
default_permission = READ
database_uri = $database
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 60
EOF
  )
  set -- "$@" --app-name basic-auth
fi
exec "$@"
