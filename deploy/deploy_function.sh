#!/usr/bin/env bash
# Deploy one Cloud Function (gen2, python312) from the staged bundle (deploy/bundle_functions.py).
#
#   deploy/deploy_function.sh NAME callable
#       Firebase callable over HTTPS. The URL is public (browsers call it); the function itself checks
#       the Firebase ID token (and App Check when KEEPER_ENFORCE_APP_CHECK is on).
#   deploy/deploy_function.sh NAME private INVOKER_EMAIL
#       HTTPS for one service account only: Cloud Run IAM lets INVOKER_EMAIL in (roles/run.invoker on
#       this function alone), and the function checks the identity token again (audience
#       INTERNAL_AUDIENCE, e-mail in the endpoint's own list: KEEPER_CONNECTOR_SERVICE_ACCOUNTS for
#       connectorSync, KEEPER_SCHEDULER_SERVICE_ACCOUNTS for healthCheck and cleanup).
#   deploy/deploy_function.sh NAME pubsub TOPIC
#       Eventarc trigger on TOPIC, retried on failure (the function raises on transient errors and
#       acknowledges messages it rejects for good); pushed with INVOKER_SA's identity. The subscription
#       Eventarc made for the trigger then gets a dead-letter policy (TOPIC_DEAD_LETTER after
#       DEAD_LETTER_ATTEMPTS deliveries), so a message that always fails stops being retried and is kept
#       for the runbook (docs/DEPLOY.md) instead of expiring. Done on every deploy: a redeploy may
#       recreate the trigger and its subscription.
#
# The same function code and environment go to every function; see functions/config.py and
# shared/vault/config.py for what each variable means.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh

require_env PROJECT_ID REGION FUNCTIONS_SA CONNECTOR_SA INVOKER_SA BUILD_SA KEK_SECRET INTERNAL_AUDIENCE \
  TOPIC_SNAPSHOTS TOPIC_CONNECTION_EVENTS TOPIC_MESSAGES TOPIC_OUTBOX TOPIC_ALERTS VERSIONS_KEPT ENFORCE_APP_CHECK

usage() {
  echo "usage: $0 NAME callable | NAME private INVOKER_EMAIL | NAME pubsub TOPIC" >&2
  exit 2
}

(($# >= 2)) || usage
name=$1
kind=$2
source_dir=${FUNCTIONS_SOURCE:-build/functions}
if [[ "${DRY_RUN:-}" != 1 && ! -f "$source_dir/main.py" ]]; then
  echo "$0: $source_dir/main.py is missing: run deploy/bundle_functions.py first" >&2
  exit 2
fi

# ^|^ switches gcloud's list delimiter to "|", so values may hold commas.
env_vars="^|^KEEPER_PROJECT=${PROJECT_ID}|GOOGLE_CLOUD_PROJECT=${PROJECT_ID}|KEEPER_REGION=${REGION}"
env_vars+="|KEEPER_TOPIC_SNAPSHOTS=${TOPIC_SNAPSHOTS}|KEEPER_TOPIC_CONNECTION_EVENTS=${TOPIC_CONNECTION_EVENTS}"
env_vars+="|KEEPER_TOPIC_ALERTS=${TOPIC_ALERTS}|KEEPER_VERSIONS_KEPT=${VERSIONS_KEPT}"
env_vars+="|KEEPER_TOPIC_MESSAGES=${TOPIC_MESSAGES}|KEEPER_TOPIC_OUTBOX=${TOPIC_OUTBOX}"
env_vars+="|KEEPER_MESSAGE_RETENTION_S=${MESSAGE_RETENTION_S:-2592000}"
env_vars+="|KEEPER_KEK_PROVIDER=secretmanager|KEEPER_KEK_SECRET=${KEK_SECRET}"
env_vars+="|KEEPER_CONNECTOR_AUDIENCE=${INTERNAL_AUDIENCE}"
env_vars+="|KEEPER_CONNECTOR_SERVICE_ACCOUNTS=${CONNECTOR_SA}|KEEPER_SCHEDULER_SERVICE_ACCOUNTS=${INVOKER_SA}"
env_vars+="|KEEPER_ENFORCE_APP_CHECK=${ENFORCE_APP_CHECK}"

common=(
  functions deploy "$name"
  --gen2 --runtime=python312 --region="$REGION" --project="$PROJECT_ID"
  --source="$source_dir" --entry-point="$name"
  --service-account="$FUNCTIONS_SA"
  --build-service-account="projects/${PROJECT_ID}/serviceAccounts/${BUILD_SA}"
  --set-env-vars="$env_vars"
  --memory=512Mi
  --quiet
)

# The Cloud Run service behind a gen2 function (for IAM and audiences).
service_of() {
  if [[ "${DRY_RUN:-}" == 1 ]]; then
    echo "$(tr '[:upper:]' '[:lower:]' <<<"$1")"
    return
  fi
  gcloud functions describe "$1" --gen2 --region="$REGION" --project="$PROJECT_ID" \
    --format='value(serviceConfig.service)' | awk -F/ '{print $NF}'
}

DEAD_LETTER_ATTEMPTS=20

# The Pub/Sub subscription (its id) that Eventarc created for function $1's trigger.
trigger_subscription() {
  local trigger subscription
  trigger=$(gcloud functions describe "$1" --region="$REGION" --project="$PROJECT_ID" \
    --format='value(eventTrigger.trigger)')
  if [[ -z "$trigger" ]]; then
    echo "$0: function $1 has no Eventarc trigger" >&2
    exit 1
  fi
  subscription=$(gcloud eventarc triggers describe "${trigger##*/}" --location="$REGION" --project="$PROJECT_ID" \
    --format='value(transport.pubsub.subscription)')
  if [[ -z "$subscription" ]]; then
    echo "$0: trigger ${trigger##*/} of $1 has no Pub/Sub subscription" >&2
    exit 1
  fi
  echo "${subscription##*/}"
}

# Dead letters for a trigger's subscription. The Pub/Sub service agent moves the message: it needs
# subscriber on this subscription (here) and publisher on the dead-letter topic (ensure_pubsub.sh).
ensure_dead_letter() {
  local subscription agent="service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
  if [[ "${DRY_RUN:-}" == 1 ]]; then
    printf '# probe: gcloud functions describe %q --region=%q --project=%q --format=%q\n' \
      "$1" "$REGION" "$PROJECT_ID" 'value(eventTrigger.trigger)'
    printf '# probe: gcloud eventarc triggers describe TRIGGER --location=%q --project=%q --format=%q\n' \
      "$REGION" "$PROJECT_ID" 'value(transport.pubsub.subscription)'
    subscription="eventarc-${REGION}-$(tr '[:upper:]' '[:lower:]' <<<"$1")-000000-sub-000"
  else
    subscription=$(trigger_subscription "$1")
  fi
  run gcloud pubsub subscriptions update "$subscription" --project="$PROJECT_ID" \
    --dead-letter-topic="$TOPIC_DEAD_LETTER" --max-delivery-attempts="$DEAD_LETTER_ATTEMPTS" \
    --min-retry-delay=10s --max-retry-delay=600s
  run gcloud pubsub subscriptions add-iam-policy-binding "$subscription" --project="$PROJECT_ID" \
    --member="serviceAccount:$agent" --role=roles/pubsub.subscriber --quiet
}

grant_invoker() {
  run gcloud functions add-invoker-policy-binding "$name" --region="$REGION" --project="$PROJECT_ID" \
    --member="serviceAccount:$1" --quiet
}

case "$kind" in
  callable)
    (($# == 2)) || usage
    run gcloud "${common[@]}" --trigger-http --allow-unauthenticated --timeout=60s
    ;;
  private)
    (($# == 3)) || usage
    run gcloud "${common[@]}" --trigger-http --no-allow-unauthenticated --timeout=300s
    grant_invoker "$3"
    # Identity tokens name INTERNAL_AUDIENCE (one audience for every private function, which is what
    # the function checks); Cloud Run accepts it once it is one of the service's custom audiences.
    run gcloud run services update "$(service_of "$name")" --region="$REGION" --project="$PROJECT_ID" \
      --add-custom-audiences="$INTERNAL_AUDIENCE" --quiet
    ;;
  pubsub)
    (($# == 3)) || usage
    require_env PROJECT_NUMBER TOPIC_DEAD_LETTER
    run gcloud "${common[@]}" --trigger-topic="$3" --retry --trigger-service-account="$INVOKER_SA" \
      --no-allow-unauthenticated --timeout=120s
    grant_invoker "$INVOKER_SA"
    ensure_dead_letter "$name"
    ;;
  *)
    usage
    ;;
esac
