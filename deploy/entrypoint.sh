#!/bin/sh
# Container entry point: every BASTION_<NAME>_FILE variable names a secret file; export its content as
# BASTION_<NAME> (nats-server expands $BASTION_<USER>_PASSWORD; the dashboard reads BASTION_DASHBOARD_SECRET).
# BASTION_NATS_PASSWORD_FILE is read by the services themselves and kept as it is.
set -eu
for var in $(env | sed -n 's/^\(BASTION_[A-Z0-9_]*\)_FILE=.*/\1/p'); do
  [ "$var" = "BASTION_NATS_PASSWORD" ] && continue
  file=$(printenv "${var}_FILE")
  export "$var=$(cat "$file")"
done
exec "$@"
