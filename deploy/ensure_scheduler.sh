#!/usr/bin/env bash
# Create or update one Cloud Scheduler job that POSTs to a private function with an OIDC token.
#
#   deploy/ensure_scheduler.sh JOB FUNCTION "CRON"
#
# The token is INVOKER_SA's, for INTERNAL_AUDIENCE: Cloud Run lets it in because INVOKER_SA holds
# roles/run.invoker on that function only, and the function checks audience and e-mail again.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh

require_env PROJECT_ID REGION INVOKER_SA INTERNAL_AUDIENCE SCHEDULE_TIMEZONE
if (($# != 3)); then
  echo "usage: $0 JOB FUNCTION CRON" >&2
  exit 2
fi
job=$1
function_name=$2
schedule=$3

if [[ "${DRY_RUN:-}" == 1 ]]; then
  uri="https://${REGION}-${PROJECT_ID}.cloudfunctions.net/${function_name}"
else
  uri=$(gcloud functions describe "$function_name" --gen2 --region="$REGION" --project="$PROJECT_ID" \
    --format='value(serviceConfig.uri)')
fi

settings=(
  --location="$REGION" --project="$PROJECT_ID"
  --schedule="$schedule" --time-zone="$SCHEDULE_TIMEZONE"
  --uri="$uri" --http-method=POST
  --oidc-service-account-email="$INVOKER_SA" --oidc-token-audience="$INTERNAL_AUDIENCE"
  --attempt-deadline=600s --max-retry-attempts=3 --min-backoff=60s
  --quiet
)
if exists gcloud scheduler jobs describe "$job" --location="$REGION" --project="$PROJECT_ID"; then
  run gcloud scheduler jobs update http "$job" "${settings[@]}"
else
  run gcloud scheduler jobs create http "$job" "${settings[@]}"
fi
