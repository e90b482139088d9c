# packages.sh -- sourced: lab_ensure_packages PKG... installs the Debian
# packages that are missing (apt-get update first), since a fresh machine or CI
# has none of them.
lab_ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "lab: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || { echo "lab: FAILURE: apt-get update failed" >&2; return 1; }
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        { echo "lab: FAILURE: apt-get install ${missing[*]} failed" >&2; return 1; }
}
