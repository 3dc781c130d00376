#!/usr/bin/env sh
# The MLflow server of the team stack, in one place: docker-compose.yml runs this script in the
# mlflow container, and the tests run the very same script against a local PostgreSQL and S3 endpoint.
#   metadata  -> PostgreSQL (--backend-store-uri)
#   artifacts -> S3 / MinIO (--artifacts-destination), proxied by the server (--serve-artifacts), so
#                clients need no S3 credentials
# Settings come from the environment (see .env.example); MLFLOW_AUTH=1 turns on basic authentication,
# MLFLOW_ALLOWED_HOSTS widens the Host headers MLflow accepts (default: localhost and private addresses).
set -eu
: "${POSTGRES_USER:?set POSTGRES_USER}" "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" "${POSTGRES_DB:?set POSTGRES_DB}"
: "${MLFLOW_BUCKET:?set MLFLOW_BUCKET}" "${MLFLOW_S3_ENDPOINT_URL:?set MLFLOW_S3_ENDPOINT_URL}"
set -- mlflow server \
  --backend-store-uri "postgresql://${POSTGRES_USER}:${POSTGRES_PASSWORD}@${POSTGRES_HOST:-postgres}:${POSTGRES_PORT:-5432}/${POSTGRES_DB}" \
  --artifacts-destination "s3://${MLFLOW_BUCKET}/mlartifacts" \
  --serve-artifacts \
  --host "${MLFLOW_HOST:-0.0.0.0}" \
  --port "${MLFLOW_PORT:-5000}" \
  --workers "${MLFLOW_WORKERS:-2}"
if [ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]; then set -- "$@" --allowed-hosts "$MLFLOW_ALLOWED_HOSTS"; fi
if [ "${MLFLOW_AUTH:-0}" = "1" ]; then
  # users live in basic_auth.db in the working folder (a volume in the compose file)
  : "${MLFLOW_AUTH_ADMIN_PASSWORD:?MLFLOW_AUTH=1 needs MLFLOW_AUTH_ADMIN_PASSWORD, the first admin password}"
  set -- "$@" --app-name basic-auth
fi
exec "$@"
