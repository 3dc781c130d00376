# Sourced by docker/mlflow-server.sh and docker/minio-init.sh, which define `refuse`: stop while any variable of the
# environment still holds an example value of .env.example (change-me...). Shell alone: the mc image has no sed or grep.
examples=$(env | while IFS='=' read -r name value; do case "$value" in change-me*) echo "$name";; esac; done)
for name in $examples; do
  refuse "$name still holds its example value (change-me...): put a secret of your own in .env," \
         "or write a fresh .env with \`python3 scripts/new_env.py\`"
done
