#!/usr/bin/env bash
# Cloud Build's test step: install what `make test` needs on a Debian image with Node.js, run the
# same checks as CI (.ci/run: ruff, mypy --strict, every test on the real emulators), then stage the
# functions bundle the deploy steps upload. Runs as root in the build container.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ca-certificates curl gnupg make python3 python3-venv \
  openjdk-17-jre-headless >/dev/null
keyring=/usr/share/keyrings/cloud.google.gpg
curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | gpg --dearmor --yes -o "$keyring"
echo "deb [signed-by=$keyring] https://packages.cloud.google.com/apt cloud-sdk main" \
  > /etc/apt/sources.list.d/google-cloud-sdk.list
apt-get update -qq
apt-get install -y -qq --no-install-recommends google-cloud-cli google-cloud-cli-firestore-emulator \
  google-cloud-cli-pubsub-emulator >/dev/null

.ci/run
.venv/bin/python deploy/bundle_functions.py
