#!/usr/bin/env bash
# Install espeak-ng (Debian/Ubuntu, as root): the streaming tests' real speech is spoken by it,
# offline. Without it those tests skip, except in CI, which sets FRUGALML_REQUIRE_SPEECH=1.
set -euo pipefail
if command -v espeak-ng >/dev/null; then
  echo "espeak-ng present"; exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "the speech tests need espeak-ng: run this as root on Debian/Ubuntu" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
echo "espeak-ng installed"
