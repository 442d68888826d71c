#!/usr/bin/env bash
# Deploy the connector to Cloud Run: always on, never CPU-throttled, as its own service account.
#
#   deploy/deploy_connector.sh IMAGE
#
# Why each setting (docs/DEPLOY.md has the longer story):
#   --min-instances=1 --no-cpu-throttling  the live WhatsApp sockets, keepalives and lease renewals run
#                                         between requests; a throttled or scaled-to-zero container
#                                         drops every account.
#   --max-instances                       CONNECTOR_MAX_INSTANCES (default 1). More instances share the
#                                         accounts through leases (capacity each: KEEPER_CAPACITY).
#   --ingress=internal, no unauthenticated  its HTTP port serves only health and metrics.
#   no secrets                            the connector holds no long-lived secret: it calls connectorSync
#                                         with its service account's identity token and seals snapshots
#                                         to the vault's public key, which connectorSync hands out.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh

require_env PROJECT_ID REGION CONNECTOR_SERVICE CONNECTOR_SA INTERNAL_AUDIENCE \
  TOPIC_SNAPSHOTS TOPIC_CONNECTION_EVENTS TOPIC_MESSAGES TOPIC_OUTBOX CONNECTOR_MAX_INSTANCES CONNECTOR_CAPACITY
if (($# != 1)); then
  echo "usage: $0 IMAGE" >&2
  exit 2
fi
image=$1

env_vars="^|^GOOGLE_CLOUD_PROJECT=${PROJECT_ID}|KEEPER_PROJECT=${PROJECT_ID}"
env_vars+="|KEEPER_FUNCTIONS_URL=https://${REGION}-${PROJECT_ID}.cloudfunctions.net"
env_vars+="|KEEPER_CONNECTOR_AUDIENCE=${INTERNAL_AUDIENCE}"
env_vars+="|KEEPER_TOPIC_SNAPSHOTS=${TOPIC_SNAPSHOTS}|KEEPER_TOPIC_CONNECTION_EVENTS=${TOPIC_CONNECTION_EVENTS}"
env_vars+="|KEEPER_TOPIC_MESSAGES=${TOPIC_MESSAGES}|KEEPER_CAPACITY=${CONNECTOR_CAPACITY}"
env_vars+="|KEEPER_TOPIC_OUTBOX=${TOPIC_OUTBOX}"

run gcloud run deploy "$CONNECTOR_SERVICE" \
  --image="$image" --region="$REGION" --project="$PROJECT_ID" \
  --service-account="$CONNECTOR_SA" \
  --min-instances=1 --max-instances="$CONNECTOR_MAX_INSTANCES" --no-cpu-throttling --cpu-boost \
  --cpu=1 --memory=1Gi --execution-environment=gen2 \
  --ingress=internal --no-allow-unauthenticated \
  --set-env-vars="$env_vars" \
  --quiet
