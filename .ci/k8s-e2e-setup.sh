#!/usr/bin/env bash
# Makes a real etcd and kube-apiserver available for the k8s end-to-end tests
# (internal/kubeapiserver). Idempotent:
#   - etcd: Debian's etcd-server, installed with apt-get when `etcd` is missing;
#   - kube-apiserver v1.37.2 (matching client-go v0.37.2): built from the Go
#     module proxy with the separate module k8sexec/e2e into the cache dir,
#     only when it is not there yet (the first build takes a while on 2 cores).
# Then writes <cache dir>/env (TDCTL_KUBE_APISERVER=..., TDCTL_ETCD=...), which
# the tests read, and prints the same lines.
#
# When a prerequisite cannot be had (no go, no module proxy, no apt) it prints
# "skipping k8s e2e: <reason>" and exits 0: the tests then skip themselves.
# A failed build exits 1 with the end of the build log.
#
# Environment:
#   TDCTL_E2E_CACHE              cache dir (default ${XDG_CACHE_HOME:-~/.cache}/tdctl-e2e)
#   TDCTL_K8S_E2E=0              do nothing (skip)
#   TDCTL_K8S_E2E_BUILD_TIMEOUT  seconds the build may take (default 3600)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

K8S_VERSION=v1.37.2
CACHE=${TDCTL_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tdctl-e2e}
APISERVER=$CACHE/kube-apiserver-$K8S_VERSION
BUILD_LOG=$CACHE/kube-apiserver-$K8S_VERSION.build.log
BUILD_TIMEOUT=${TDCTL_K8S_E2E_BUILD_TIMEOUT:-3600}

log() { printf '[k8s-e2e] %s\n' "$*"; }
skip() {
  printf 'skipping k8s e2e: %s\n' "$*"
  exit 0
}

[ "${TDCTL_K8S_E2E:-1}" != 0 ] || skip "TDCTL_K8S_E2E=0"

mkdir -p "$CACHE"
# One setup at a time (a second caller waits for the first one's build).
exec 9>"$CACHE/.setup.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

# --- etcd ---
if ! command -v etcd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    skip "etcd is missing and there is no apt-get to install etcd-server"
  fi
  log "apt-get install etcd-server"
  if ! { $SUDO apt-get update -qq >/dev/null &&
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server >/dev/null; }; then
    skip "apt-get install etcd-server failed"
  fi
fi
ETCD=$(command -v etcd) || skip "etcd-server installed but no etcd on PATH"
log "etcd: $ETCD ($("$ETCD" --version 2>/dev/null | head -n1))"

# --- kube-apiserver ---
apiserver_ok() {
  [ -x "$APISERVER" ] && "$APISERVER" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION"
}
if apiserver_ok; then
  log "kube-apiserver: $APISERVER (cached)"
else
  command -v go >/dev/null 2>&1 || skip "no go toolchain to build kube-apiserver $K8S_VERSION"
  cd "$repo/k8sexec/e2e"
  export GOWORK=off
  log "checking the Go module proxy for k8s.io/kubernetes@$K8S_VERSION"
  if ! timeout 300 go mod download k8s.io/kubernetes >/dev/null 2>"$CACHE/download.err"; then
    skip "cannot download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy: $(tail -n1 "$CACHE/download.err")"
  fi
  log "downloading the modules kube-apiserver needs"
  if ! timeout 900 go mod download >/dev/null 2>"$CACHE/download.err"; then
    skip "cannot download kube-apiserver's modules from the Go module proxy: $(tail -n1 "$CACHE/download.err")"
  fi
  log "building kube-apiserver $K8S_VERSION into $APISERVER (log: $BUILD_LOG; takes a while the first time)"
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -v)
  start=$(date +%s)
  set +e
  timeout "$BUILD_TIMEOUT" "${timer[@]}" go build -trimpath -ldflags "$ldflags" \
    -o "$APISERVER.tmp" k8s.io/kubernetes/cmd/kube-apiserver >"$BUILD_LOG" 2>&1
  rc=$?
  set -e
  if [ "$rc" = 124 ]; then
    rm -f "$APISERVER.tmp"
    skip "building kube-apiserver took longer than ${BUILD_TIMEOUT}s (TDCTL_K8S_E2E_BUILD_TIMEOUT)"
  fi
  if [ "$rc" != 0 ]; then
    rm -f "$APISERVER.tmp"
    log "building kube-apiserver failed (exit $rc); end of $BUILD_LOG:"
    tail -n 30 "$BUILD_LOG" >&2
    exit 1
  fi
  mv -f "$APISERVER.tmp" "$APISERVER"
  log "built in $(( $(date +%s) - start ))s, $(du -h "$APISERVER" | cut -f1)$(
    grep -m1 'Maximum resident' "$BUILD_LOG" 2>/dev/null | awk '{printf ", peak RSS of one build process %d MiB", $NF/1024}')"
  apiserver_ok || { log "$APISERVER does not report Kubernetes $K8S_VERSION"; exit 1; }
  cd "$repo"
fi

cat >"$CACHE/env.tmp" <<EOF
# written by .ci/k8s-e2e-setup.sh; read by internal/kubeapiserver
export TDCTL_KUBE_APISERVER=$APISERVER
export TDCTL_ETCD=$ETCD
EOF
mv -f "$CACHE/env.tmp" "$CACHE/env"
log "wrote $CACHE/env:"
grep '^export' "$CACHE/env"
