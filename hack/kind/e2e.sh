#!/usr/bin/env bash
# The e2e suite on two kind clusters sharing one broker, for machines with Docker (`make kind-e2e`).
#
# east runs the operator, the services and a RabbitMQ (manifests/broker/in-cluster); west runs the
# operator and the services, with its SyncBroker Secret pointed at east's broker through a NodePort
# on the kind network. The services are exposed as NodePorts too, and the same tests/e2e suite runs
# with RABBITSYNC_E2E_STATE_DIR pointing at the kubeconfigs and base URLs written here.
#
# Needs: docker, kind, kubectl (>= 1.33), the project's .venv (make venv). KEEP=1 keeps the clusters.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE:-rabbitsync:0.1.0}
STATE=${RABBITSYNC_E2E_STATE_DIR:-$PWD/.dev-kind}
NS=foodapp
CLUSTERS=(east west)
declare -A NODE_PORTS=([restaurant]=30080 [restaurant-menu]=30081 [order]=30082)
AMQP_NODE_PORT=30672
MGMT_NODE_PORT=31672

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is required (this path is for machines with Docker)"; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "kind-e2e: no Docker engine is running"; exit 2; }
mkdir -p "$STATE"

cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then
    for c in "${CLUSTERS[@]}"; do kind delete cluster --name "rabbitsync-$c" || true; done
  fi
}
trap cleanup EXIT

docker build -t "$IMAGE" .
for c in "${CLUSTERS[@]}"; do
  kind get clusters | grep -qx "rabbitsync-$c" || kind create cluster --name "rabbitsync-$c" --wait 120s
  kind get kubeconfig --name "rabbitsync-$c" > "$STATE/$c.kubeconfig"
  kind load docker-image "$IMAGE" --name "rabbitsync-$c"
done

k() { local c=$1; shift; kubectl --kubeconfig "$STATE/$c.kubeconfig" "$@"; }
node_ip() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "rabbitsync-$1-control-plane"; }
EAST_IP=$(node_ip east)

# CRDs first (the overlays also create resources of these kinds), then each cluster's overlay.
for c in "${CLUSTERS[@]}"; do
  k "$c" apply --server-side -f crds/
  k "$c" wait --for=condition=Established --timeout=60s crd/syncbrokers.rabbitsync.io crd/syncsubscriptions.rabbitsync.io \
    crd/syncpublications.rabbitsync.io crd/clustersyncbrokers.rabbitsync.io
  k "$c" apply --server-side --force-conflicts -k "manifests/overlays/$c"
done

# east hosts the shared broker; its admin Secret (in rabbitsync-system) points at the in-cluster Service.
k east apply --server-side --force-conflicts -k manifests/broker/in-cluster
k east -n "$NS" patch service rabbitmq --type=merge -p "{\"spec\":{\"type\":\"NodePort\",\"ports\":[
  {\"name\":\"amqp\",\"port\":5672,\"targetPort\":\"amqp\",\"nodePort\":$AMQP_NODE_PORT},
  {\"name\":\"management\",\"port\":15672,\"targetPort\":\"management\",\"nodePort\":$MGMT_NODE_PORT}]}}"
k east -n "$NS" rollout status statefulset/rabbitmq --timeout=300s
EAST_URI=$(k east -n rabbitsync-system get secret rabbitsync-broker-admin -o jsonpath='{.data.uri}' | base64 -d)
CREDS=${EAST_URI#amqp://}; CREDS=${CREDS%%@*}
k west -n rabbitsync-system create secret generic rabbitsync-broker-admin \
  --from-literal=uri="amqp://$CREDS@$EAST_IP:$AMQP_NODE_PORT/%2F" \
  --from-literal=managementUri="http://$CREDS@$EAST_IP:$MGMT_NODE_PORT" \
  --dry-run=client -o yaml | k west apply -f -

# Services as NodePorts, reachable from this host on the kind network; then wait for the rollouts
# (the operator injects the sidecars, which rolls each Deployment once).
echo "{" > "$STATE/services.json.tmp"
first=1
for c in "${CLUSTERS[@]}"; do
  ip=$(node_ip "$c")
  [ $first = 1 ] || echo "," >> "$STATE/services.json.tmp"; first=0
  echo "\"$c\": {" >> "$STATE/services.json.tmp"
  sep=""
  for svc in "${!NODE_PORTS[@]}"; do
    k "$c" -n "$NS" patch service "$svc" --type=merge \
      -p "{\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":\"http\",\"nodePort\":${NODE_PORTS[$svc]}}]}}"
    echo "$sep\"$svc\": \"http://$ip:${NODE_PORTS[$svc]}\"" >> "$STATE/services.json.tmp"; sep=","
  done
  echo "}" >> "$STATE/services.json.tmp"
  k "$c" -n rabbitsync-system rollout status deployment/rabbitsync-operator --timeout=300s
  for svc in "${!NODE_PORTS[@]}"; do
    k "$c" -n "$NS" wait --for=jsonpath='{.status.conditions[?(@.type=="SidecarInjected")].status}'=True \
      "syncsubscription/$svc" --timeout=180s
    k "$c" -n "$NS" rollout status "deployment/$svc" --timeout=300s
  done
done
echo "}" >> "$STATE/services.json.tmp"
mv "$STATE/services.json.tmp" "$STATE/services.json"

RABBITSYNC_E2E_STATE_DIR="$STATE" .venv/bin/pytest tests/e2e -m e2e "$@"
