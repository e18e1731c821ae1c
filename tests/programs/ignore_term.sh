#!/bin/sh
# Ignores the polite signals: only SIGKILL ends it.
trap '' HUP TERM INT
echo ready
while :; do sleep 1; done
