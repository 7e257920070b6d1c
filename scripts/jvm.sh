#!/usr/bin/env bash
# Resolves one JVM tool the tests or benchmarks run (Apache Kafka, Kafka
# Connect, a Schema Registry, Spark's jars, ...) from Maven Central into
# ~/.cache/tributary/jvm/<tool>/, once: `scripts/jvm/<tool>/pom.xml` lists its
# artifacts, `mvn dependency:copy-dependencies` copies them and everything they
# need into that folder, and a stamp of the pom's hash skips the work next time.
# A tool that builds something of its own (a `src/` folder beside its pom, as
# the Apicurio Registry's Quarkus application) is packaged with `mvn package` in
# a scratch copy instead, and its `target/dist/` becomes the folder. A
# `settings.xml` beside the pom is passed to Maven.
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
dir="$here/jvm/$tool"
want="$(sha256sum "$pom" | cut -d' ' -f1)"
if [ -d "$dir/src" ]; then
  # A tool with sources: the stamp covers every file of its folder.
  want="$(cd "$dir" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
fi
settings=()
if [ -f "$dir/settings.xml" ]; then settings=(-s "$dir/settings.xml"); fi
mkdir -p "$root"
# Tests start tools in parallel: one resolves, the others wait for it.
exec 9>"$root/.$tool.lock"
flock 9
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "jvm: resolving $tool from Maven Central into $out (once)" >&2
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  if [ -d "$dir/src" ]; then
    build="$(mktemp -d)"
    cp -a "$dir/." "$build/"
    mvn -B -q "${settings[@]}" -f "$build/pom.xml" package >&2
    rmdir "$out.tmp"
    mv "$build/target/dist" "$out.tmp"
    rm -rf "$build"
  else
    mvn -B -q "${settings[@]}" -f "$pom" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$out.tmp" >&2
  fi
  rm -rf "$out"
  mv "$out.tmp" "$out"
  echo "$want" > "$stamp"
fi
echo "$out"
