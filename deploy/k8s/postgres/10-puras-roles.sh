#!/bin/sh
# The services' Postgres roles (ARCHITECTURE section 7): one login role per service with
# tables, owning its tables only. The postgres image runs this once, when the volume is
# first initialised; it is idempotent, so after a password change (or on a volume made
# before the roles existed) run it again:
#   kubectl -n puras exec postgres-0 -- sh /docker-entrypoint-initdb.d/10-puras-roles.sh
# The passwords come from the services' Secrets (postgres.yaml); roles.sql (mounted at
# /etc/puras-postgres, outside the init folder: it needs the variables) holds none.
set -eu
psql --no-psqlrc --username "${POSTGRES_USER:-puras}" --dbname "${POSTGRES_DB:-puras}" \
  --set gateway_password="$PURAS_GATEWAY_DATABASE_PASSWORD" \
  --set billing_password="$PURAS_BILLING_DATABASE_PASSWORD" \
  --set drive_password="$PURAS_DRIVE_DATABASE_PASSWORD" \
  --file /etc/puras-postgres/roles.sql
