#!/usr/bin/env bash
# Builds the control-plane binaries the tests and the local demo run:
# kube-apiserver, kube-controller-manager, kubectl (tools/kubernetes) and etcd
# (tools/etcd), from the Go module proxy at the versions pinned in those go.mod
# files. The binaries land in a cache outside the repository keyed by version;
# a build whose binaries are already there is skipped.
#
# Prints the directory holding the binaries on its last line of stdout.
#
#   GOVCLOUD_CACHE   cache root (default: $HOME/.cache/govcloud-operator)
#   GOVCLOUD_BUILD_JOBS  parallel Go compile jobs (default: number of cores)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${GOVCLOUD_CACHE:-$HOME/.cache/govcloud-operator}

module_version() { # <go.mod> <module path>: the version it requires
  awk -v m="$2" '
    $1 == "require" && $2 == m { print $3; exit }
    $1 == m && $2 ~ /^v/ { print $2; exit }' "$1"
}

k8s_version=$(module_version "$here/kubernetes/go.mod" k8s.io/kubernetes)
etcd_version=$(module_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)
[ -n "$k8s_version" ] && [ -n "$etcd_version" ] || {
  echo "cannot read pinned versions from tools/*/go.mod" >&2
  exit 1
}

bin_dir="$cache_root/control-plane/kubernetes-$k8s_version-etcd-$etcd_version/bin"
wanted=(kube-apiserver kube-controller-manager kubectl etcd)

have_all() {
  for b in "${wanted[@]}"; do [ -x "$bin_dir/$b" ] || return 1; done
}

if have_all; then
  echo "control plane $k8s_version / etcd $etcd_version: cached" >&2
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || {
  echo "Go is needed to build the local control plane (https://go.dev/dl/)," \
    "or point KUBECONFIG at an existing cluster instead." >&2
  exit 1
}

mkdir -p "$bin_dir"
exec 9>"$bin_dir/.build.lock"
flock 9
if have_all; then # another process finished the build while we waited
  echo "$bin_dir"
  exit 0
fi

tmp=$(mktemp -d "$bin_dir/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

export CGO_ENABLED=0
jobs=${GOVCLOUD_BUILD_JOBS:-$(nproc)}

# Upstream stamps the version with these variables (hack/lib/version.sh);
# without them the apiserver reports v0.0.0-master.
minor=${k8s_version#v1.}
minor=${minor%%.*}
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1"
  k8s_ldflags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  k8s_ldflags+=" -X $pkg.buildDate=$build_date"
done

started=$(date +%s)
echo "building etcd $etcd_version into $bin_dir" >&2
(cd "$here/etcd" && go build -p "$jobs" -trimpath -ldflags "-s -w" \
  -o "$tmp/etcd" go.etcd.io/etcd/server/v3)

for cmd in kube-apiserver kube-controller-manager kubectl; do
  echo "building $cmd $k8s_version" >&2
  (cd "$here/kubernetes" && go build -p "$jobs" -trimpath -ldflags "$k8s_ldflags" \
    -o "$tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd")
done

for b in "${wanted[@]}"; do mv -f "$tmp/$b" "$bin_dir/$b"; done
echo "control plane built in $(($(date +%s) - started)) s" >&2
echo "$bin_dir"
