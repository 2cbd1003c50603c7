#!/usr/bin/env bash
# Kept for scripts that call it: the service setup lives in scripts/services.sh.
exec bash "$(dirname "$0")/../scripts/services.sh" "$@"
