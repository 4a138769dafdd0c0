#!/bin/sh
# Called by daily_params.dig with the previous run's finish time (empty on
# the first run). Prints this run's finish time as a param for param_set>.
if [ -z "$1" ]; then
  echo "first run: no previous execution recorded"
else
  echo "previous run finished at $1"
fi
echo "::set-param finished_time=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
