#!/bin/sh
# Entrypoint of the mrsdask image: `mrsdask ARGS…`, unless the first argument is one of the Dask
# programs that cluster managers start in the same image (Helm chart, operator, jobqueue, gateway).
set -e
case "$1" in
    dask|dask-worker|dask-scheduler|dask-gateway-worker|dask-gateway-scheduler|python|python3|sh|bash)
        exec "$@" ;;
    *)
        exec mrsdask "$@" ;;
esac
