#!/usr/bin/env bash
# Runs Apache Kafka in the foreground: one KRaft node that is both broker and
# controller, listening on 127.0.0.1 only, its log in <data dir>. The broker of
# the tests (tests/all/kafka_env.rs), the quickstart and the benchmark.
#
#   scripts/kafka.sh <data dir> <broker port> <controller port>
#
# The first start formats <data dir> (Kafka's storage tool, a random cluster
# id); a later start on the same folder keeps its topics. When
# <data dir>/extra.properties exists it is appended to the broker's
# configuration (listeners for TLS/SASL, say; later keys win), and each line
# of <data dir>/scram-users (`SCRAM-SHA-512=[name=alice,password=...]`) is a
# SCRAM user created when the folder is formatted (the storage tool's
# --add-scram: KRaft keeps SCRAM credentials in its metadata log, so there is
# no broker yet to create them through). The jars come from
# `scripts/jvm.sh kafka` (Maven Central, once) or $TRIBUTARY_KAFKA_JARS; Java
# is $TRIBUTARY_JAVA or `java`; $KAFKA_JVM_OPTS replaces the JVM options, which
# by default favour a quick start over peak speed (tests start many brokers).
# Kafka logs warnings and errors to stderr. Ready means "answers metadata with
# itself as a broker", not "listens": callers wait for that.
set -euo pipefail

dir="${1:?usage: scripts/kafka.sh <data dir> <broker port> <controller port>}"
port="${2:?usage: scripts/kafka.sh <data dir> <broker port> <controller port>}"
controller="${3:?usage: scripts/kafka.sh <data dir> <broker port> <controller port>}"
here="$(cd "$(dirname "$0")" && pwd)"
jars="${TRIBUTARY_KAFKA_JARS:-$("$here/jvm.sh" kafka)}"
java="${TRIBUTARY_JAVA:-java}"
# Serial GC and the C1 compiler only: about a second less to start on two
# busy cores, and the tests never run long enough to miss C2.
opts="${KAFKA_JVM_OPTS:--Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData}"

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
props="$dir/server.properties"
cat > "$props" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
log.dirs=$dir/log
# One node: internal topics with one replica, and few partitions so the first
# consumer group or transaction does not wait for 50 of them to be created.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# As production clusters are usually set: topics are created on purpose,
# never by a producer's or consumer's metadata request.
auto.create.topics.enable=false
EOF
if [ -f "$dir/extra.properties" ]; then
  cat "$dir/extra.properties" >> "$props"
fi

log4j="-Dlog4j2.configurationFile=$here/jvm/kafka/log4j2.properties"
if [ ! -f "$dir/log/meta.properties" ]; then
  # A cluster id is 16 random bytes, URL-safe base64 without padding; not
  # one starting with `-`, which the storage tool's parser takes for an
  # option (1 start in 64 failed so).
  cluster="-"
  while [ "${cluster#-}" != "$cluster" ]; do
    cluster="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  done
  scram=()
  if [ -f "$dir/scram-users" ]; then
    while IFS= read -r user; do
      [ -n "$user" ] && scram+=(--add-scram "$user")
    done < "$dir/scram-users"
  fi
  # shellcheck disable=SC2086
  "$java" $opts "$log4j" -cp "$jars/*" kafka.tools.StorageTool format \
    --cluster-id "$cluster" --config "$props" --ignore-formatted "${scram[@]}" >/dev/null
fi
# shellcheck disable=SC2086
exec "$java" $opts "$log4j" -cp "$jars/*" kafka.Kafka "$props"
