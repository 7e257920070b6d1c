#!/usr/bin/env bash
# Resolves one JVM tool the tests or benchmarks run (Apache Kafka, Kafka
# Connect, a Schema Registry, Spark's jars, ...) from Maven Central into
# ~/.cache/tributary/jvm/<tool>/, once: `scripts/jvm/<tool>/pom.xml` lists its
# artifacts, `mvn dependency:copy-dependencies` copies them and everything they
# need into that folder, and a stamp of the pom's hash skips the work next time.
# Prints the folder (a classpath is "<folder>/*").
#
#   scripts/jvm.sh kafka      # -> ~/.cache/tributary/jvm/kafka
set -euo pipefail

tool="${1:?usage: scripts/jvm.sh <tool> (a folder under scripts/jvm/)}"
here="$(cd "$(dirname "$0")" && pwd)"
pom="$here/jvm/$tool/pom.xml"
if [ ! -f "$pom" ]; then
  echo "jvm: no $pom: the tools are $(ls "$here/jvm" | tr '\n' ' ')" >&2
  exit 2
fi
root="${TRIBUTARY_JVM:-$HOME/.cache/tributary/jvm}"
out="$root/$tool"
stamp="$out/.pom.sha256"
want="$(sha256sum "$pom" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "jvm: resolving $tool from Maven Central into $out (once)" >&2
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  mvn -B -q -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$out.tmp" >&2
  rm -rf "$out"
  mv "$out.tmp" "$out"
  echo "$want" > "$stamp"
fi
echo "$out"
