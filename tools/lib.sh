# Shared by the build scripts: the pinned versions and Kubernetes' ldflags.
# Sourced, not run.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${GOVCLOUD_CACHE:-$HOME/.cache/govcloud-operator}

module_version() { # <go.mod> <module path>: the version it requires
  awk -v m="$2" '
    $1 == "require" && $2 == m { print $3; exit }
    $1 == m && $2 ~ /^v/ { print $2; exit }' "$1"
}

k8s_version=$(module_version "$here/kubernetes/go.mod" k8s.io/kubernetes)

# Upstream stamps the version with these variables (hack/lib/version.sh);
# without them the apiserver reports v0.0.0-master.
k8s_ldflags() {
  local minor=${k8s_version#v1.} pkg flags="-s -w" build_date
  minor=${minor%%.*}
  build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1"
    flags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    flags+=" -X $pkg.buildDate=$build_date"
  done
  echo "$flags"
}

need_go() {
  command -v go >/dev/null || {
    echo "Go is needed to build $1 (https://go.dev/dl/)." >&2
    exit 1
  }
}

# The binaries of "${wanted[@]}" not yet in "$bin_dir", one per line.
missing() {
  local b
  for b in "${wanted[@]}"; do [ -x "$bin_dir/$b" ] || echo "$b"; done
}

# Takes the cache directory's lock (another process may be building into
# it), makes "$tmp" to build in (removed on exit), and sets up the build.
start_build() {
  mkdir -p "$bin_dir"
  exec 9>"$bin_dir/.build.lock"
  flock 9
  tmp=$(mktemp -d "$bin_dir/.tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  export CGO_ENABLED=0
  jobs=${GOVCLOUD_BUILD_JOBS:-$(nproc)}
  started=$(date +%s)
}
