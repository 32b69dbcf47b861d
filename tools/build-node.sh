#!/usr/bin/env bash
# Builds the binaries of a local worker node: kubelet, kube-proxy and
# kube-scheduler from
# the same pinned k8s.io/kubernetes as the control plane (tools/kubernetes),
# and containerd with its runc shim and ctr (tools/containerd), from the Go module
# proxy. runc and the CNI plugins come from Debian (runc,
# containernetworking-plugins). Cached outside the repository, keyed by
# version; a binary already there is not built again.
#
# Prints the directory holding the binaries on its last line of stdout.
#
#   GOVCLOUD_CACHE       cache root (default: $HOME/.cache/govcloud-operator)
#   GOVCLOUD_BUILD_JOBS  parallel Go compile jobs (default: number of cores)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

containerd_version=$(module_version "$here/containerd/go.mod" github.com/containerd/containerd/v2)
[ -n "$k8s_version" ] && [ -n "$containerd_version" ] || {
  echo "cannot read pinned versions from tools/{kubernetes,containerd}/go.mod" >&2
  exit 1
}
bin_dir="$cache_root/node/kubernetes-$k8s_version-containerd-$containerd_version/bin"
wanted=(kubelet kube-proxy kube-scheduler containerd containerd-shim-runc-v2 ctr)

if [ -z "$(missing)" ]; then
  echo "node $k8s_version / containerd $containerd_version: cached" >&2
  echo "$bin_dir"
  exit 0
fi
need_go "the local node"

start_build
# No storage drivers that need cgo or kernel modules: the node uses overlayfs.
containerd_tags="no_btrfs no_devmapper no_zfs no_aufs"
containerd_ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version"

for b in $(missing); do
  case $b in
  containerd | containerd-shim-runc-v2 | ctr)
    echo "building $b $containerd_version" >&2
    (cd "$here/containerd" && go build -p "$jobs" -trimpath -tags "$containerd_tags" \
      -ldflags "$containerd_ldflags" -o "$tmp/$b" "github.com/containerd/containerd/v2/cmd/$b")
    ;;
  *)
    echo "building $b $k8s_version" >&2
    (cd "$here/kubernetes" && go build -p "$jobs" -trimpath -ldflags "$(k8s_ldflags)" \
      -o "$tmp/$b" "k8s.io/kubernetes/cmd/$b")
    ;;
  esac
  mv -f "$tmp/$b" "$bin_dir/$b"
done

echo "built in $(($(date +%s) - started)) s" >&2
echo "$bin_dir"
