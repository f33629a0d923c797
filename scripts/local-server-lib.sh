# Sourced by scripts that need a fresh local server: builds and starts it
# on a free loopback port with the given environment (extra `NAME=value`
# arguments), waits for /health, sets $port (and $edge, the address of its
# nginx edge, if it started one) and stops it on exit.
start_local_server() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/flashsale/target}"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cargo build --quiet -p local-server
  env PORT="$port" ADMIN_PASSWORD=admin "$@" "$CARGO_TARGET_DIR/debug/local-server" >"/tmp/local-server-$port.log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
  for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then
      edge=$(sed -n 's/^edge (nginx) *\(http[^ ]*\).*/\1/p' "/tmp/local-server-$port.log")
      return 0
    fi
    sleep 0.5
  done
  echo "the local server did not come up; see /tmp/local-server-$port.log" >&2
  return 1
}
