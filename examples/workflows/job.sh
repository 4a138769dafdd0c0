#!/bin/sh
# Called by daily_params.dig with the previous run's session time (empty on
# the first run).
if [ -z "$1" ]; then
  echo "first run: no previous execution recorded"
else
  echo "previous run was the session of $1"
fi
