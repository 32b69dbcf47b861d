#!/usr/bin/env bash
# Builds the binaries the tests and the local demo run: kube-apiserver,
# kube-controller-manager, kubectl (tools/kubernetes), etcd (tools/etcd) and
# helm (tools/helm), from the Go module proxy at the versions pinned in those
# go.mod files. They land in a cache outside the repository keyed by version;
# a binary already there is not built again.
#
# Prints the directory holding the binaries on its last line of stdout.
#
#   GOVCLOUD_CACHE   cache root (default: $HOME/.cache/govcloud-operator)
#   GOVCLOUD_BUILD_JOBS  parallel Go compile jobs (default: number of cores)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

etcd_version=$(module_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)
helm_version=$(module_version "$here/helm/go.mod" helm.sh/helm/v4)
[ -n "$k8s_version" ] && [ -n "$etcd_version" ] && [ -n "$helm_version" ] || {
  echo "cannot read pinned versions from tools/*/go.mod" >&2
  exit 1
}

bin_dir="$cache_root/control-plane/kubernetes-$k8s_version-etcd-$etcd_version/bin"
# Helm has its own key, so that moving it does not rebuild the control plane;
# bin/helm links to it.
helm_dir="$cache_root/helm/$helm_version"
wanted=(kube-apiserver kube-controller-manager kubectl etcd helm)

if [ -z "$(missing)" ]; then
  echo "control plane $k8s_version / etcd $etcd_version / helm $helm_version: cached" >&2
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || {
  echo "Go is needed to build the local control plane (https://go.dev/dl/)," \
    "or point KUBECONFIG at an existing cluster instead." >&2
  exit 1
}

mkdir -p "$helm_dir"
start_build
# Another process may have built some while this one waited for the lock.
for b in $(missing); do
  case $b in
  etcd)
    echo "building etcd $etcd_version" >&2
    (cd "$here/etcd" && go build -p "$jobs" -trimpath -ldflags "-s -w" \
      -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
    mv -f "$tmp/etcd" "$bin_dir/etcd"
    ;;
  helm)
    if [ ! -x "$helm_dir/helm" ]; then
      echo "building helm $helm_version" >&2
      (cd "$here/helm" && go build -p "$jobs" -trimpath \
        -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version" \
        -o "$tmp/helm" helm.sh/helm/v4/cmd/helm)
      mv -f "$tmp/helm" "$helm_dir/helm"
    fi
    ln -sfn "$helm_dir/helm" "$bin_dir/helm"
    ;;
  *)
    echo "building $b $k8s_version" >&2
    (cd "$here/kubernetes" && go build -p "$jobs" -trimpath -ldflags "$(k8s_ldflags)" \
      -o "$tmp/$b" "k8s.io/kubernetes/cmd/$b")
    mv -f "$tmp/$b" "$bin_dir/$b"
    ;;
  esac
done

echo "built in $(($(date +%s) - started)) s" >&2
echo "$bin_dir"
