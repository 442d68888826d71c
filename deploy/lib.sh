# Helpers sourced by the deploy scripts (not run on its own).
#
# DRY_RUN=1 makes `run` print each command, shell-quoted on one line, instead of running it; tests and
# reviewers use it to see exactly what a deploy would do.

run() {
  if [[ "${DRY_RUN:-}" == 1 ]]; then
    printf '%q ' "$@" | sed 's/ $//'
    printf '\n'
  else
    "$@"
  fi
}

# `exists CMD...`: true when a describe command succeeds. Under DRY_RUN it prints the probe and answers
# "missing", so the printed plan shows the create path.
exists() {
  if [[ "${DRY_RUN:-}" == 1 ]]; then
    printf '# probe: '
    printf '%q ' "$@" | sed 's/ $//'
    printf '\n'
    return 1
  fi
  "$@" >/dev/null 2>&1
}

require_env() {
  local name missing=()
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || missing+=("$name")
  done
  if ((${#missing[@]})); then
    echo "$(basename "$0"): missing environment: ${missing[*]} (cloudbuild.yaml sets them in options.env)" >&2
    exit 2
  fi
}
