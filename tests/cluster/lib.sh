# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by up and down, which source this file
# Shared settings and helpers for tests/cluster/up and tests/cluster/down (PROTOTYPE).
#
# Layout: control plane (etcd, kube-apiserver, controller-manager, scheduler) runs on the host,
# bound to 127.0.0.1 and the host end of a veth pair. The node (containerd, kubelet,
# kube-proxy) runs inside network namespace $NETNS *and* one private mount namespace held by
# a `sleep infinity` process, so that its iptables rules, sysctls (net.*) and mounts never
# touch the host's. See docs/k8s-cluster-notes.md.

CACHE_ROOT="${DJANGOOPS_K3S_CACHE:-/var/cache/djangoops/k3s}"
KUBE_BIN="$CACHE_ROOT/kube-v1.34.4/bin"
RT_BIN="$CACHE_ROOT/v1.34.9-k3s1/bin"        # runc, containerd, shim, CNI plugins
ADDON_BIN="$CACHE_ROOT/addons/bin"
STATE="${DJANGOOPS_CLUSTER_STATE:-/var/cache/djangoops/cluster}"
RUNDIR=/run/djangoops-k8s                     # sockets; short paths (unix socket limit)
PIDS="$STATE/pids"
LOGS="$STATE/logs"
PKI="$STATE/pki"

NETNS=djangoops-k8s
VETH_HOST=djk8s-h
VETH_NODE=djk8s-n
HOST_IP=10.213.99.1                           # host end of the /30
NODE_IP=10.213.99.2                           # node end of the /30
NODE_NAME=djangoops-node
SERVICE_CIDR=10.213.96.0/24
API_SERVICE_IP=10.213.96.1
DNS_SERVICE_IP=10.213.96.10
CLUSTER_CIDR=10.213.98.0/24                   # one node, node-cidr-mask-size 24 = all of it
API_PORT=16443
ETCD_CLIENT_PORT=12379
ETCD_PEER_PORT=12380
CM_PORT=20257
SCHED_PORT=20259
REGISTRY_PORT=5000                            # docker-registry on 127.0.0.1:5000 (host)
S3_PORT=7070                                  # versitygw on 127.0.0.1:7070 (tests/harness/s3-up)
PAUSE_IMAGE=registry.k8s.io/pause:3.10.1
COREDNS_IMAGE=registry.k8s.io/coredns/coredns:v1.14.4
METRICS_IMAGE=registry.k8s.io/metrics-server/metrics-server:v0.8.0
LOCALPATH_IMAGE=docker.io/rancher/local-path-provisioner:v0.0.30
BUSYBOX_IMAGE=docker.io/library/busybox:1.35.0           # from Debian busybox-static 1.35.0
METRICS_PORT=10251                            # metrics-server, hostNetwork in the node netns
CGROUP_ROOT=/djangoops-k8s                    # pods' cgroups live under this, in every v1 controller
KUBECTL="$KUBE_BIN/kubectl"
ADMIN_KUBECONFIG="$STATE/admin.kubeconfig"

export PATH="$RT_BIN:$KUBE_BIN:$PATH"

log() { printf '%s cluster: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# start NAME CMD...: start a daemon in the background, in its own session, pid in $PIDS/NAME.pid
start() {
    local name=$1; shift
    mkdir -p "$PIDS" "$LOGS"
    setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$name.pid"
}

# in_node CMD...: run CMD in the node's network + mount namespaces (held by the holder process)
in_node() {
    local holder
    holder=$(cat "$PIDS/holder.pid")
    nsenter -t "$holder" -m -n -- "$@"
}

# start_in_node NAME CMD...
start_in_node() {
    local name=$1 holder; shift
    holder=$(cat "$PIDS/holder.pid")
    start "$name" nsenter -t "$holder" -m -n -- "$@"
}

alive() { [[ -f "$PIDS/$1.pid" ]] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.5 s
wait_for() {
    local secs=$1 what=$2 i; shift 2
    for ((i = 0; i < secs * 2; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    die "timed out after ${secs}s waiting for $what"
}

kc() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

cgroup_controllers() {
    local d
    for d in /sys/fs/cgroup/*/; do
        d=${d%/}
        [[ -f "$d/cgroup.procs" ]] && echo "$d"
    done
}
