#!/usr/bin/env bash
# Pins tools/kubernetes to another Kubernetes release:
#   tools/update-kubernetes.sh v1.36.3
# k8s.io/kubernetes requires each staging module at v0.0.0 and replaces it with
# a local path; this writes a replace to the published v0.<minor>.<patch> for
# every one of them, then resolves the tools and tidies the module.
set -euo pipefail
version=${1:?usage: $0 vX.Y.Z}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
proxy=${GOPROXY:-https://proxy.golang.org}
proxy=${proxy%%,*}
staging=v0.${version#v1.}

upstream=$(curl -fsS "$proxy/k8s.io/kubernetes/@v/$version.mod")
{
  echo "// Wrapper module that pins the Kubernetes control-plane binaries built for tests"
  echo "// and the local demo. k8s.io/kubernetes replaces its staging modules with local"
  echo "// paths, which Go ignores in a dependency; the replaces below point each one at"
  echo "// its published release instead. Regenerate with tools/update-kubernetes.sh."
  echo "module govcloud.dev/tools/kubernetes"
  echo
  echo "$upstream" | grep -E '^go [0-9]'
  echo
  echo "$upstream" | grep -E '^godebug ' || true
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  echo "replace ("
  echo "$upstream" | awk -v v="$staging" '
    /^require/ { r = 1 }
    r && /^\tk8s.io\/[^ ]+ v0.0.0$/ { print "\t" $1 " => " $1 " " v }
    /^\)/ { r = 0 }'
  echo ")"
} > "$here/kubernetes/go.mod"
rm -f "$here/kubernetes/go.sum"
cd "$here/kubernetes"
go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$version" \
  "k8s.io/kubernetes/cmd/kube-controller-manager@$version" \
  "k8s.io/kubernetes/cmd/kubectl@$version" \
  "k8s.io/kubernetes/cmd/kubelet@$version" \
  "k8s.io/kubernetes/cmd/kube-scheduler@$version"
go mod tidy
echo "tools/kubernetes now pins $version; tools/build-control-plane.sh builds it on next use" >&2
