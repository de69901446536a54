#!/usr/bin/env bash
# Runs the official MCP conformance suite's server scenarios against one MCP server URL, for both
# pinned release lines (package.json: conformance-stable, conformance-next) and every dated spec
# version each line knows, prints one pass/fail table, and exits non-zero on any failure.
#
#   tests/conformance/run.sh URL [label]
#
# Needs `npm ci` in this directory first: it brings the suite and the Node (>= 22) it needs.
# Every scenario applicable at a version runs (`--suite all`: the active set plus the pending and
# draft-spec scenarios; extension scenarios have no dated version and are not selected), so a
# scenario the suite itself has not promoted yet still shows up here. CONFORMANCE_SUITE=active
# narrows it to the suite's default set.
set -euo pipefail

url=${1:?usage: run.sh URL [label]}
label=${2:-$url}
here=$(cd "$(dirname "$0")" && pwd)
node="$here/node_modules/.bin/node"
suite=${CONFORMANCE_SUITE:-all}
# Per (line, version) run; the whole suite at one version takes seconds against a local server.
run_timeout=${CONFORMANCE_RUN_TIMEOUT:-300}
lines=(stable next)

# Known failures that are the suite's fault, not the server's: "line version scenario", each with
# the reason on the line above. A listed failure is reported as xfail and does not fail the run;
# a listed scenario that passes is reported as XPASS and fails the run, so the list cannot rot.
expected_failures=(
  # (none: every scenario passes against the fixture)
)
# A server that is not the fixture (the gateway in front of it) names its own known gaps in a file:
# one "line version scenario" per line, `#` comments allowed.
if [ -n "${CONFORMANCE_EXPECTED_FAILURES:-}" ]; then
  while read -r entry_line entry_version entry_scenario _; do
    case "$entry_line" in ''|'#'*) continue ;; esac
    expected_failures+=("$entry_line $entry_version $entry_scenario")
  done <"$CONFORMANCE_EXPECTED_FAILURES"
fi

if [ ! -x "$node" ]; then
  echo "run.sh: $node is missing; run 'npm ci' in $here first" >&2
  exit 2
fi

is_expected() {
  local entry
  for entry in "${expected_failures[@]}"; do
    [ "$entry" = "$1 $2 $3" ] && return 0
  done
  return 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

declare -A cell=()   # "line version scenario" -> ok | FAIL | xfail | XPASS
declare -a columns=() scenarios=()
declare -A seen=()
failed=0

for line in "${lines[@]}"; do
  suite_js="$here/node_modules/conformance-$line/dist/index.js"
  version=$("$node" -p "require('$here/node_modules/conformance-$line/package.json').version")
  # The dated versions this line has server scenarios for, read from its own listing
  # ("  - name [2025-06-18,2025-11-25]"); "draft" and "extension" tags are not versions.
  mapfile -t versions < <("$node" "$suite_js" list --server |
    sed -n 's/^  - [^ ]* \[\(.*\)\]$/\1/p' | tr ',' '\n' | grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' | sort -u)
  for spec in "${versions[@]}"; do
    column="$line@$version $spec"
    columns+=("$column")
    log="$work/$line-$spec.log"
    status=0
    timeout "$run_timeout" "$node" "$suite_js" server --url "$url" --suite "$suite" \
      --spec-version "$spec" -o "$work/results-$line-$spec" >"$log" 2>&1 || status=$?
    # The suite's summary: "✓ scenario: N passed, M failed" or "✗ scenario: ...".
    mapfile -t summary < <(sed -n '/=== SUMMARY ===/,$p' "$log" | grep -E '^(✓|✗) ')
    if [ ${#summary[@]} -eq 0 ]; then
      echo "conformance-$line $spec: no summary (exit $status); last lines of its output:" >&2
      tail -20 "$log" >&2
      cell["$column (run)"]=FAIL
      failed=1
      continue
    fi
    for row in "${summary[@]}"; do
      scenario=${row#* }
      scenario=${scenario%%:*}
      if [ -z "${seen[$scenario]:-}" ]; then
        seen[$scenario]=1
        scenarios+=("$scenario")
      fi
      if [[ $row == ✓* ]]; then
        if is_expected "$line" "$spec" "$scenario"; then
          cell["$column $scenario"]=XPASS
          failed=1
        else
          cell["$column $scenario"]=ok
        fi
      else
        if is_expected "$line" "$spec" "$scenario"; then
          cell["$column $scenario"]=xfail
        else
          cell["$column $scenario"]=FAIL
          failed=1
          echo "--- conformance-$line $spec $scenario: failed checks" >&2
          find "$work/results-$line-$spec" -path "*server-$scenario-*" -name checks.json \
            -exec "$node" -e '
              for (const c of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")))
                if (c.status === "FAILURE") console.error(`  ${c.id}: ${c.errorMessage ?? ""}`);
            ' {} \; || true
        fi
      fi
    done
    # A run whose summary is clean but whose process failed (crash after the summary) is a failure.
    if [ "$status" -ne 0 ] && ! grep -qE '^✗ ' <<<"$(printf '%s\n' "${summary[@]}")"; then
      echo "conformance-$line $spec exited $status with a clean summary" >&2
      cell["$column (run)"]=FAIL
      failed=1
    fi
  done
done

# The table: one row per scenario, one column per (line, spec version); "-" = not applicable.
printf '\nMCP conformance (%s suite) against %s\n' "$suite" "$label"
width=46
printf '%-*s' "$width" "scenario"
for column in "${columns[@]}"; do printf ' %-10s' "${column#* }"; done
printf '\n%-*s' "$width" ""
for column in "${columns[@]}"; do
  name=${column%%@*}
  printf ' %-10s' "$name"
done
printf '\n'
for scenario in "${scenarios[@]}" "(run)"; do
  row=""
  any=""
  for column in "${columns[@]}"; do
    value=${cell["$column $scenario"]:--}
    [ "$value" != "-" ] && any=1
    row+=$(printf ' %-10s' "$value")
  done
  [ -n "$any" ] && printf '%-*s%s\n' "$width" "$scenario" "$row"
done
for column in "${columns[@]}"; do
  ok=0 bad=0
  for scenario in "${scenarios[@]}"; do
    case ${cell["$column $scenario"]:-} in
      ok | xfail) ok=$((ok + 1)) ;;
      FAIL | XPASS) bad=$((bad + 1)) ;;
    esac
  done
  printf '%-24s %3d passed %3d failed\n' "$column" "$ok" "$bad"
done

if [ "$failed" -ne 0 ]; then
  echo "conformance: FAILED against $label" >&2
  exit 1
fi
echo "conformance: all scenarios passed against $label"
