#!/usr/bin/env bash
# Installs what a local run or the test suite needs and is not already here:
# redis-server (Debian package), Java (for DynamoDB Local) and DynamoDB Local
# itself (AWS's jar, shipped inside the npm package amplify-dynamodb-simulator),
# plus curl and jq for the walkthrough, wrk for the benchmark, nginx as the
# local edge, localstripe (PyPI) as the local Stripe and moto (PyPI) as the
# local S3.
# Safe to run again: it only fetches what is missing.
set -euo pipefail

cache="${FLASHSALE_CACHE:-$HOME/.cache/flashsale}"
ddb_dir="$cache/dynamodb-local"

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v npm >/dev/null || missing+=(npm)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
command -v wrk >/dev/null || missing+=(wrk)
# nginx stands where CloudFront stands, in front of the local server.
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx-light)
# The payment providers' signing is held to OpenSSL's in the tests.
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (apt)"
  apt_install "${missing[@]}"
fi

# rust-toolchain.toml pins the Rust release. A machine whose rustup cannot
# download it (registries only) but whose stable toolchain is that very
# release gets the pin pointed at stable, as rustup itself would not.
toolchain_file="$(dirname "$0")/../rust-toolchain.toml"
if [ -f "$toolchain_file" ] && command -v rustup >/dev/null; then
  pinned=$(sed -n 's/^channel = "\(.*\)"$/\1/p' "$toolchain_file")
  installed=$(rustup toolchain list)
  case "$installed" in
  *"$pinned-"*) ;;
  *)
    stable=$(rustc +stable --print sysroot 2>/dev/null || true)
    if [ -n "$stable" ] && [ "$(rustc +stable --version | cut -d' ' -f2)" = "$pinned" ]; then
      echo "Rust $pinned: using the stable toolchain, which is that release"
      ln -sfn "$stable" "$(dirname "$stable")/$pinned-$(rustc +stable -vV | sed -n 's/^host: //p')"
    fi
    ;;
  esac
fi

if [ ! -f "$ddb_dir/package/emulator/DynamoDBLocal.jar" ]; then
  echo "fetching DynamoDB Local (npm package amplify-dynamodb-simulator)"
  mkdir -p "$ddb_dir"
  (cd "$ddb_dir" && rm -f ./*.tgz && npm pack --silent amplify-dynamodb-simulator >/dev/null && tar xzf ./*.tgz)
fi

# localstripe (PyPI): the local stand-in for Stripe, in a virtualenv of
# its own (local-server/src/services.rs starts it on loopback).
stripe_venv="$cache/localstripe-venv"
if ! "$stripe_venv/bin/python" -c 'import localstripe' 2>/dev/null; then
  echo "installing localstripe (PyPI)"
  python3 -m venv "$stripe_venv"
  "$stripe_venv/bin/pip" install --quiet localstripe
fi

# moto (PyPI): the local stand-in for S3, where the cloud keeps the
# rendered item pages (the edge function's tests).
moto_venv="$cache/moto-venv"
if [ ! -x "$moto_venv/bin/moto_server" ]; then
  echo "installing moto (PyPI)"
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install --quiet "moto[s3,server]"
fi

echo "redis-server: $(redis-server --version | cut -d' ' -f3)"
echo "DynamoDB Local: $ddb_dir/package/emulator"
