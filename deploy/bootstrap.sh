#!/usr/bin/env bash
# One-time setup of an empty Google Cloud project for keeper (docs/DEPLOY.md walks through it).
#
#   PROJECT_ID=my-project REGION=us-central1 deploy/bootstrap.sh
#
# Enables the APIs, creates the Firestore database, the Artifact Registry repository, the four service
# accounts and the KEK secret, and grants each account the least it needs. Resource-level grants that
# need the resource to exist first (publish on one topic, invoke one function) are made by the deploy
# scripts (ensure_pubsub.sh, deploy_function.sh). No service-account key is ever created.
# Run by a project owner. Safe to run again. DRY_RUN=1 prints the commands instead.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh

require_env PROJECT_ID REGION
KEK_SECRET=${KEK_SECRET:-keeper-vault-kek}
AR_REPO=${AR_REPO:-keeper}
project=(--project="$PROJECT_ID")
sa() { echo "keeper-$1@${PROJECT_ID}.iam.gserviceaccount.com"; }
FUNCTIONS_SA=$(sa functions)
CONNECTOR_SA=$(sa connector)
INVOKER_SA=$(sa invoker)
DEPLOYER_SA=$(sa deployer)

APIS=(
  cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com
  artifactregistry.googleapis.com eventarc.googleapis.com pubsub.googleapis.com
  cloudscheduler.googleapis.com secretmanager.googleapis.com firestore.googleapis.com
  iam.googleapis.com iamcredentials.googleapis.com firebase.googleapis.com
  identitytoolkit.googleapis.com logging.googleapis.com monitoring.googleapis.com
)
run gcloud services enable "${APIS[@]}" "${project[@]}"

if ! exists gcloud firestore databases describe --database='(default)' "${project[@]}"; then
  run gcloud firestore databases create --location="$REGION" --type=firestore-native "${project[@]}"
fi

if ! exists gcloud artifacts repositories describe "$AR_REPO" --location="$REGION" "${project[@]}"; then
  run gcloud artifacts repositories create "$AR_REPO" --repository-format=docker --location="$REGION" \
    --description="keeper connector images" "${project[@]}"
fi

declare -A PURPOSE=(
  [functions]="keeper functions: Firestore, the KEK secret, publish alerts"
  [connector]="keeper connector: publish events, call connectorSync"
  [invoker]="keeper invoker: Cloud Scheduler jobs and Pub/Sub triggers"
  [deployer]="keeper deployer: Cloud Build"
)
for name in functions connector invoker deployer; do
  if ! exists gcloud iam service-accounts describe "$(sa "$name")" "${project[@]}"; then
    run gcloud iam service-accounts create "keeper-$name" --display-name="${PURPOSE[$name]}" "${project[@]}"
  fi
done

grant_project() {
  run gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$1" --role="$2" \
    --condition=None --quiet
}

# Functions: Firestore reads and writes (vault, accounts, leases). Secret access is on the KEK secret
# only (below); publishing on the alerts topic only (ensure_pubsub.sh).
grant_project "$FUNCTIONS_SA" roles/datastore.user

# Connector and invoker: nothing project-wide. The connector publishes on its three topics and invokes
# connectorSync; the invoker invokes healthCheck, cleanup and the Pub/Sub-triggered functions.

# Deployer (Cloud Build): deploy functions, Cloud Run, topics, schedules; push images; build functions.
for role in roles/cloudfunctions.developer roles/run.admin roles/pubsub.admin roles/cloudscheduler.admin \
    roles/eventarc.developer roles/artifactregistry.writer roles/cloudbuild.builds.builder \
    roles/logging.logWriter; do
  grant_project "$DEPLOYER_SA" "$role"
done
# The deployer may deploy code that runs as these accounts, and nothing else may.
for runtime in "$FUNCTIONS_SA" "$CONNECTOR_SA" "$INVOKER_SA" "$DEPLOYER_SA"; do
  run gcloud iam service-accounts add-iam-policy-binding "$runtime" \
    --member="serviceAccount:$DEPLOYER_SA" --role=roles/iam.serviceAccountUser "${project[@]}" --quiet
done

# Pub/Sub push to the triggered functions signs OIDC tokens as the invoker account.
if [[ "${DRY_RUN:-}" == 1 ]]; then
  number=${PROJECT_NUMBER:-PROJECT_NUMBER}
else
  number=$(gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)')
fi
run gcloud iam service-accounts add-iam-policy-binding "$INVOKER_SA" \
  --member="serviceAccount:service-${number}@gcp-sa-pubsub.iam.gserviceaccount.com" \
  --role=roles/iam.serviceAccountTokenCreator "${project[@]}" --quiet

# The KEK: 32 random bytes as the first secret version; functions may read it, nobody else.
if ! exists gcloud secrets describe "$KEK_SECRET" "${project[@]}"; then
  run gcloud secrets create "$KEK_SECRET" --replication-policy=automatic "${project[@]}"
  if [[ "${DRY_RUN:-}" == 1 ]]; then
    echo "# then: head -c 32 /dev/urandom | gcloud secrets versions add $KEK_SECRET --data-file=-"
  else
    head -c 32 /dev/urandom | gcloud secrets versions add "$KEK_SECRET" --data-file=- "${project[@]}"
  fi
fi
run gcloud secrets add-iam-policy-binding "$KEK_SECRET" --member="serviceAccount:$FUNCTIONS_SA" \
  --role=roles/secretmanager.secretAccessor "${project[@]}" --quiet

echo "bootstrap done. Next: enable Firebase on the project and its sign-in providers, then" \
  "gcloud builds submit --config=cloudbuild.yaml --region=$REGION . (docs/DEPLOY.md)" >&2
