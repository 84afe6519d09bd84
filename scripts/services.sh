#!/usr/bin/env bash
# Starts the local PostgreSQL the test suite uses, when it is installed but not running.
set -u
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
exit 0
