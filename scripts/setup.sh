#!/usr/bin/env bash
# Installs what Tributary's main job and tests need, skipping what is there:
# the wasm32-wasip2 Rust target, Apache Kafka's jars (from Maven Central into
# ~/.cache/tributary/jvm/kafka; a minute the first time), Node.js, npm,
# clang, wasi-libc, Chromium and OpenSSL's headers (Debian packages, when
# missing), the web console's npm packages (uPlot, which the build embeds,
# and playwright-core for its browser test), a
# PostgreSQL server on 127.0.0.1:5432 (scripts/postgres.sh), and a Python venv with PyIceberg,
# DuckDB, confluent-kafka and componentize-py.
# Prints the venv's python path as its last line.
set -euo pipefail

log() { echo "setup: $*" >&2; }

# Installs Debian packages when this user can (root with apt-get), updating
# the package lists once if the first try fails, and stops setup if that
# fails too; when this user cannot install, says what is missing and returns 1.
#   debian_install "<what, for the log>" "<why it is needed>" PKG...
debian_install() {
  local what="$1" why="$2"
  shift 2
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "$what is missing: install $* ($why)"
    return 1
  fi
  log "installing $what (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; } \
    || exit 1
}

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  log "adding the wasm32-wasip2 Rust target"
  rustup target add wasm32-wasip2 >&2
fi

# OpenSSL's headers and pkg-config: the bundled librdkafka is built with TLS
# and SASL (SCRAM) against the system OpenSSL, so `cargo build` needs them.
if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists openssl 2>/dev/null; then
  debian_install "OpenSSL headers and pkg-config" "the Kafka client is built with TLS against them" \
    libssl-dev pkg-config || exit 1
fi

# Apache Kafka (the broker of the tests, the quickstart and the benchmark):
# its jars from Maven Central into ~/.cache/tributary/jvm/kafka (scripts/jvm.sh;
# about 55 MB, once). It runs on the JVM, so Java 17+ and Maven are needed.
if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  debian_install "Java 17 and Maven" "Apache Kafka, the test broker, runs on the JVM" \
    openjdk-17-jdk-headless maven || exit 1
fi
"$(dirname "$0")/jvm.sh" kafka >/dev/null
# Apicurio Registry (a Schema Registry we did not write, for the
# interoperability tests) and Spark's Kafka and Iceberg jars (the differential
# test against the seed's Spark job): resolved here, once, so no test waits on
# Maven Central.
"$(dirname "$0")/jvm.sh" apicurio >/dev/null
"$(dirname "$0")/jvm.sh" spark >/dev/null

# Node.js and npm build the JavaScript transform example (componentize-js,
# which examples/transforms/js/build.sh installs from the npm registry), and
# install the web console's packages below, which the build needs.
if ! command -v npm >/dev/null 2>&1; then
  debian_install "Node.js and npm" "the build embeds the web console's chart library from npm" nodejs npm \
    || { log "then run scripts/setup.sh again"; exit 1; }
fi

# The web console's packages from the npm registry, at the versions their
# package-lock.json pins (`npm ci`; again only when the lock file changed):
# uPlot, its chart library, which worker/build.rs compiles into the binary
# (so `cargo build` needs it), and playwright-core, the library its browser
# test drives Chromium with (tests/all/console.rs). Nothing is downloaded
# but these packages: playwright-core brings no browser.
npm_ci() {
  local dir="$1" want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$dir/node_modules/.lock.sha256" 2>/dev/null)" != "$want" ]; then
    log "installing $2 from the npm registry into $dir/node_modules"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$want" > "$dir/node_modules/.lock.sha256"
  fi
}
root="$(cd "$(dirname "$0")/.." && pwd)"
npm_ci "$root/worker/console" "the console's chart library (uPlot)"
npm_ci "$root/tests/console" "playwright-core (the console's browser test)"

# Chromium, headless, for the console's browser test.
if ! command -v chromium >/dev/null 2>&1; then
  debian_install "Chromium" "the web console's browser test drives it headless" chromium || true
fi

# clang, lld, wasi-libc and compiler-rt's wasm32 builtins build the C
# transform example (tributary itself writes the bindings and the component).
c_links() {
  local probe
  probe="$(mktemp -d)"
  printf 'int f(void) { return 1; }\n' > "$probe/p.c"
  clang --target=wasm32-wasi -mexec-model=reactor -o "$probe/p.wasm" "$probe/p.c" >/dev/null 2>&1
  local ok=$?
  rm -rf "$probe"
  return $ok
}
if ! c_links; then
  debian_install "clang, lld and wasi-libc" "the C transform tests build for wasm32-wasi with them" \
    clang lld wasi-libc libclang-rt-dev-wasm32 || true
fi

# openssl and curl: the TLS tests make a throwaway CA with the openssl
# command line and call `tributary serve` over HTTPS with curl
# (tests/all/test_ca.rs, kafka_secure.rs, serve_tls.rs).
if ! command -v openssl >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
  debian_install "openssl and curl" "the TLS tests need them" openssl curl || true
fi

# strace: the durability test watches every rename the binary makes for the
# fsync of its folder (tests/all/open_world.rs).
if ! command -v strace >/dev/null 2>&1; then
  debian_install "strace" "the durability test needs it" strace || true
fi

# PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`) for the
# Postgres checkpoint-store and catalog tests; started when nothing listens.
if [ -z "${TRIBUTARY_SKIP_POSTGRES:-}" ]; then
  "$(dirname "$0")/postgres.sh"
fi

VENV="${TRIBUTARY_VENV:-$HOME/.cache/tributary/venv}"
PY="$VENV/bin/python"
REQ="$(cd "$(dirname "$0")" && pwd)/requirements.txt"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ ! -x "$PY" ]; then
  log "creating the Python venv $VENV"
  mkdir -p "$(dirname "$VENV")"
  if ! python3 -m venv "$VENV" >&2; then
    log "python3 -m venv failed: on Debian, apt-get install python3-venv"
    exit 1
  fi
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages (PyIceberg, DuckDB) into $VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check -r "$REQ" >&2
  echo "$want" > "$STAMP"
fi
echo "$PY"
