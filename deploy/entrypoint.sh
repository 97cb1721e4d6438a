#!/bin/sh
# Container entry point: every BASTION_*_FILE variable names a secret file; export its content as the
# variable without _FILE (BASTION_NATS_PASSWORD_FILE is read by the services themselves and kept).
set -eu
for var in $(env | sed -n 's/^\(BASTION_[A-Z_]*_PASSWORD\)_FILE=.*/\1/p'); do
  [ "$var" = "BASTION_NATS_PASSWORD" ] && continue
  file=$(printenv "${var}_FILE")
  export "$var=$(cat "$file")"
done
exec "$@"
