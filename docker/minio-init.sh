#!/bin/sh
# The team stack's MinIO set up, once per `docker compose up` (the minio-init service runs it with MinIO's `mc`; the
# tests run it too, and give moto's S3 server the policies it writes):
#   - the artifact bucket MLFLOW_BUCKET and the datasets' bucket DVC_BUCKET, both private (no anonymous access);
#   - two users for the DVC bucket and nothing else: the instructor's DVC_WRITER_* key (read, write, delete: `dvc push`,
#     `dvc gc -c`) and the class's DVC_READER_* key (read only: `dvc pull`; a push or a delete is refused).
# Running it again changes nothing. It refuses to run while a secret still holds its example value (change-me...).
set -eu
refuse() { echo "minio-init.sh: refusing to set up MinIO: $*" >&2; exit 1; }
. "$(dirname "$0")/refuse-examples.sh"
: "${MINIO_ROOT_USER:?set it in .env}" "${MINIO_ROOT_PASSWORD:?set it in .env}" "${MLFLOW_BUCKET:?set it in .env}"
: "${DVC_BUCKET:?set it in .env}" "${DVC_WRITER_ACCESS_KEY_ID:?set it in .env}"
: "${DVC_WRITER_SECRET_ACCESS_KEY:?set it in .env}" "${DVC_READER_ACCESS_KEY_ID:?set it in .env}"
: "${DVC_READER_SECRET_ACCESS_KEY:?set it in .env}"
policies="${POLICY_DIR:-/tmp}"

mc alias set local "${MINIO_URL:-http://minio:9000}" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
for bucket in "$MLFLOW_BUCKET" "$DVC_BUCKET"; do
  mc mb --ignore-existing "local/$bucket"
  mc anonymous set none "local/$bucket"
done

# IAM policies, as MinIO takes them: the bucket itself (list it, find it) and its objects
cat > "$policies/dvc-readwrite.json" <<EOF
{"Version": "2012-10-17", "Statement": [
 {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
  "Resource": ["arn:aws:s3:::$DVC_BUCKET"]},
 {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
  "s3:ListMultipartUploadParts"], "Resource": ["arn:aws:s3:::$DVC_BUCKET/*"]}]}
EOF
cat > "$policies/dvc-readonly.json" <<EOF
{"Version": "2012-10-17", "Statement": [
 {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"], "Resource": ["arn:aws:s3:::$DVC_BUCKET"]},
 {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::$DVC_BUCKET/*"]}]}
EOF

# one user per key, with its policy; `policy attach` fails when it is attached already, which is what we want
add_user() {  # add_user KEY SECRET POLICY
  mc admin policy create local "$3" "$policies/$3.json"
  mc admin user add local "$1" "$2"
  mc admin policy attach local "$3" --user "$1" || attached "$1" "$3"
}
attached() {  # attached KEY POLICY: whether the user has the policy
  case "$(mc admin user info local "$1")" in *"$2"*) return 0;; *) return 1;; esac
}
add_user "$DVC_WRITER_ACCESS_KEY_ID" "$DVC_WRITER_SECRET_ACCESS_KEY" dvc-readwrite
add_user "$DVC_READER_ACCESS_KEY_ID" "$DVC_READER_SECRET_ACCESS_KEY" dvc-readonly
echo "minio-init.sh: buckets $MLFLOW_BUCKET and $DVC_BUCKET (private); DVC users $DVC_WRITER_ACCESS_KEY_ID" \
     "(read, write) and $DVC_READER_ACCESS_KEY_ID (read only)"
