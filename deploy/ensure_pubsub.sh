#!/usr/bin/env bash
# Create keeper's Pub/Sub topics and subscriptions if missing, and grant publish rights per topic.
# Safe to run again: it creates only what is missing and IAM bindings are idempotent.
#
# Topics (docs/ARCHITECTURE.md): snapshots, connection events, messages (connector publishes); alerts
# and outbox (functions publish); a dead-letter topic for the messages subscription.
# The messages topic carries plaintext messages: only the connector may publish on it, and only the
# recordMessageEvent trigger (Eventarc) and the messages-consumer subscription read it. The outbox
# topic carries accepted sends: only the functions publish; each connector instance reads it through
# a subscription of its own, outbox-<connectorId> (it creates it at start, it expires after a day
# unused), which is all the keeperOutboxReader role below allows it.
# Subscriptions: the Pub/Sub-triggered functions get theirs from Eventarc at deploy time; this script
# creates the ones for consumers outside keeper: messages (ordered by account, dead-lettered) and
# alerts (for the on-call tooling), plus one to read the dead letters.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh

require_env PROJECT_ID PROJECT_NUMBER CONNECTOR_SA FUNCTIONS_SA \
  TOPIC_SNAPSHOTS TOPIC_CONNECTION_EVENTS TOPIC_MESSAGES TOPIC_OUTBOX TOPIC_ALERTS TOPIC_DEAD_LETTER

project=(--project="$PROJECT_ID")
TOPICS=("$TOPIC_SNAPSHOTS" "$TOPIC_CONNECTION_EVENTS" "$TOPIC_MESSAGES" "$TOPIC_OUTBOX" "$TOPIC_ALERTS"
  "$TOPIC_DEAD_LETTER")
RETENTION=7d

for topic in "${TOPICS[@]}"; do
  if ! exists gcloud pubsub topics describe "$topic" "${project[@]}"; then
    run gcloud pubsub topics create "$topic" "${project[@]}" --message-retention-duration="$RETENTION"
  fi
done

ensure_subscription() {
  local name=$1 topic=$2
  shift 2
  if ! exists gcloud pubsub subscriptions describe "$name" "${project[@]}"; then
    run gcloud pubsub subscriptions create "$name" --topic="$topic" "${project[@]}" "$@"
  fi
}

ensure_subscription "${TOPIC_MESSAGES}-consumer" "$TOPIC_MESSAGES" \
  --enable-message-ordering --ack-deadline=60 --message-retention-duration="$RETENTION" \
  --dead-letter-topic="$TOPIC_DEAD_LETTER" --max-delivery-attempts=20 \
  --min-retry-delay=10s --max-retry-delay=600s
ensure_subscription "${TOPIC_ALERTS}-oncall" "$TOPIC_ALERTS" --ack-deadline=60 --message-retention-duration="$RETENTION"
ensure_subscription "${TOPIC_DEAD_LETTER}-inspect" "$TOPIC_DEAD_LETTER" --message-retention-duration="$RETENTION"

# Least privilege: publish rights on the topics each identity writes, not project-wide.
grant_publisher() {
  run gcloud pubsub topics add-iam-policy-binding "$1" "${project[@]}" \
    --member="serviceAccount:$2" --role=roles/pubsub.publisher --quiet
}
for topic in "$TOPIC_SNAPSHOTS" "$TOPIC_CONNECTION_EVENTS" "$TOPIC_MESSAGES"; do
  grant_publisher "$topic" "$CONNECTOR_SA"
done
grant_publisher "$TOPIC_ALERTS" "$FUNCTIONS_SA"
grant_publisher "$TOPIC_OUTBOX" "$FUNCTIONS_SA"

# The connector's outbox subscriptions: attach to the outbox topic only (roles/pubsub.subscriber on
# that topic), and create, read and delete subscriptions named outbox-* only (a custom role bound
# with a condition on the resource name; it reaches no other subscription, messages-consumer included).
OUTBOX_ROLE=keeperOutboxReader
if ! exists gcloud iam roles describe "$OUTBOX_ROLE" "${project[@]}"; then
  run gcloud iam roles create "$OUTBOX_ROLE" "${project[@]}" --title="keeper connector outbox reader" \
    --permissions=pubsub.subscriptions.create,pubsub.subscriptions.consume,pubsub.subscriptions.delete,pubsub.subscriptions.get
fi
run gcloud pubsub topics add-iam-policy-binding "$TOPIC_OUTBOX" "${project[@]}" \
  --member="serviceAccount:$CONNECTOR_SA" --role=roles/pubsub.subscriber --quiet
run gcloud projects add-iam-policy-binding "$PROJECT_ID" \
  --member="serviceAccount:$CONNECTOR_SA" --role="projects/$PROJECT_ID/roles/$OUTBOX_ROLE" \
  --condition="title=outbox-subscriptions,expression=resource.name.startsWith(\"projects/$PROJECT_ID/subscriptions/$TOPIC_OUTBOX-\")" --quiet

# Dead-lettering: the Pub/Sub service agent forwards to the dead-letter topic and acks the source.
agent="service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
grant_publisher "$TOPIC_DEAD_LETTER" "$agent"
run gcloud pubsub subscriptions add-iam-policy-binding "${TOPIC_MESSAGES}-consumer" "${project[@]}" \
  --member="serviceAccount:$agent" --role=roles/pubsub.subscriber --quiet
