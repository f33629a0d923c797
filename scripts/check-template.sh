#!/usr/bin/env bash
# Lints the SAM template the way AWS would read it: `sam validate --lint`
# (SAM's transform, then cfn-lint on the result) and cfn-lint on the
# template itself. Both must be clean. Installs aws-sam-cli and cfn-lint
# from PyPI first if they are missing. Needs no AWS account or credentials.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0

missing=()
command -v sam >/dev/null || missing+=(aws-sam-cli)
command -v cfn-lint >/dev/null || missing+=(cfn-lint)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (pip)"
  python3 -m pip install --quiet "${missing[@]}"
  hash -r
fi

sam validate --lint --template-file infra/template.yaml
cfn-lint infra/template.yaml
echo "template: sam validate --lint and cfn-lint clean"
