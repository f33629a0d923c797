#!/usr/bin/env bash
# Puts the web console (console/) on the stack's CloudFront distribution:
# reads the stack's outputs, syncs console/ into its private bucket (every
# file Cache-Control: no-cache, since the names carry no content hash, so a
# browser revalidates rather than keeps an old file), uploads a config.js
# naming the stack's API in place of the local one, invalidates
# CloudFront's copies and prints the console's URL.
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
api=$(output ApiUrl)
bucket=$(output ConsoleBucketName)
distribution=$(output ConsoleDistributionId)
url=$(output ConsoleUrl)

# config.js is the one file that differs from the local console (which
# calls its own origin); the one in console/ is never uploaded.
aws s3 sync console/ "s3://$bucket/" --delete --exclude config.js \
  --cache-control no-cache
printf 'window.FLASHSALE_API = "%s";\n' "$api" |
  aws s3 cp - "s3://$bucket/config.js" \
    --content-type 'text/javascript; charset=utf-8' --cache-control no-cache

invalidation=$(aws cloudfront create-invalidation --distribution-id "$distribution" \
  --paths '/*' --query Invalidation.Id --output text)
echo "deploy-console: uploaded console/ to s3://$bucket, API $api"
echo "deploy-console: invalidation $invalidation of CloudFront's copies under way (a minute or two)"
echo "$url"
