#!/usr/bin/env bash
# Puts the web console (console/) on the stack's CloudFront distribution:
# reads the stack's outputs, syncs console/ into its private bucket (every
# file Cache-Control: no-cache, since the names carry no content hash, so a
# browser revalidates rather than keeps an old file), invalidates
# CloudFront's copies and prints the console's URL. The console calls the
# API at its own origin, where the same distribution serves it, as the
# local console does (console/config.js names no other).
# Usage: scripts/deploy-console.sh [stack]   (default $STACK, else flashsale)
# Needs the AWS CLI with credentials for the stack's account and region
# (the same as `sam deploy`), and the stack deployed from infra/template.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."

stack="${1:-${STACK:-flashsale}}"

for file in console/index.html console/config.js; do
  [ -f "$file" ] || { echo "deploy-console: $file is missing" >&2; exit 1; }
done

outputs=$(aws cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text)
output() {
  local value
  value=$(awk -F '\t' -v key="$1" '$1 == key { print $2 }' <<<"$outputs")
  [ -n "$value" ] || {
    echo "deploy-console: stack $stack has no output $1; deploy infra/template.yaml first (sam deploy)" >&2
    exit 1
  }
  echo "$value"
}
bucket=$(output ConsoleBucketName)
distribution=$(output ConsoleDistributionId)
url=$(output ConsoleUrl)

aws s3 sync console/ "s3://$bucket/" --delete --cache-control no-cache

invalidation=$(aws cloudfront create-invalidation --distribution-id "$distribution" \
  --paths '/*' --query Invalidation.Id --output text)
echo "deploy-console: uploaded console/ to s3://$bucket"
echo "deploy-console: invalidation $invalidation of CloudFront's copies under way (a minute or two)"
echo "$url"
