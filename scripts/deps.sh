#!/usr/bin/env bash
# deps.sh: check what tinypv needs and install what is missing (Debian).
#
# Usage: scripts/deps.sh [build|run|test|bench]        (default: build)
#   build        gcc, make, binutils (objdump, readelf), python3,
#                qemu-system-x86_64, Xen public headers (/usr/include/xen/xen.h)
#   run, test    also the Xen hypervisor (/boot/xen-4.17-amd64.gz)
#   bench        also the Xen hypervisor and gnuplot
#
# Why: the project's machines start from scratch, so the project installs
# what it needs itself.  Prints only "deps: ok" when everything is present.
# As root it installs the missing Debian packages with apt-get; otherwise it
# prints the command to run and exits 1.
#
# Test knobs (environment):
#   DEPS_DRYRUN=1             print the apt-get commands instead of running them
#   DEPS_FAKE_MISSING="a b"   treat these checks (command names or paths) as missing
#   DEPS_AS_USER=1            behave as if not root
set -euo pipefail

mode=${1:-build}
case "$mode" in
build | run | test | bench) ;;
*)
	echo "usage: $0 [build|run|test|bench]" >&2
	exit 2
	;;
esac

# "what package": a command name or an absolute path, and the package providing it.
needs=(
	"gcc gcc"
	"make make"
	"objdump binutils"
	"readelf binutils"
	"python3 python3"
	"qemu-system-x86_64 qemu-system-x86"
	"/usr/include/xen/xen.h libxen-dev"
	"/usr/include/x86_64-linux-gnu/asm/kvm_para.h linux-libc-dev"
)
case "$mode" in
run | test | bench) needs+=("/boot/xen-4.17-amd64.gz xen-hypervisor-4.17-amd64") ;;
esac
if [ "$mode" = bench ]; then
	needs+=("gnuplot gnuplot-nox")
fi

APT_OPTS=(-o DPkg::Lock::Timeout=600)

present() {
	local what=$1
	case " ${DEPS_FAKE_MISSING:-} " in
	*" $what "*) return 1 ;;
	esac
	if [[ "$what" == /* ]]; then
		[ -e "$what" ]
	else
		command -v "$what" >/dev/null 2>&1
	fi
}

# Fills the globals missing (what is absent) and pkgs (packages, no repeats).
find_missing() {
	missing=()
	pkgs=()
	local entry what pkg
	for entry in "${needs[@]}"; do
		read -r what pkg <<<"$entry"
		present "$what" && continue
		missing+=("$what")
		case " ${pkgs[*]:-} " in
		*" $pkg "*) ;;
		*) pkgs+=("$pkg") ;;
		esac
	done
}

run() {
	if [ "${DEPS_DRYRUN:-}" = 1 ]; then
		echo "deps: would run: $*"
	else
		"$@"
	fi
}

# True when apt knows an installable version of every package.
apt_knows_all() {
	local pkg policy
	for pkg in "$@"; do
		policy=$(apt-cache policy "$pkg" 2>/dev/null)
		[[ "$policy" == *"Candidate: "[!\(]* ]] || return 1
	done
}

apt_update() {
	run apt-get "${APT_OPTS[@]}" update -q || {
		echo "deps: apt-get update failed" >&2
		exit 1
	}
}

apt_install() {
	DEBIAN_FRONTEND=noninteractive run apt-get "${APT_OPTS[@]}" install -y \
		--no-install-recommends "$@"
}

install_packages() {
	local updated=0
	if ! apt_knows_all "$@"; then
		apt_update
		updated=1
	fi
	if apt_install "$@"; then
		return 0
	fi
	if [ "$updated" = 0 ]; then # stale package lists: refresh once and retry
		apt_update
		apt_install "$@" && return 0
	fi
	echo "deps: apt-get install failed for: $*" >&2
	exit 1
}

find_missing
if [ "${#missing[@]}" -eq 0 ]; then
	echo "deps: ok"
	exit 0
fi

if [ "$(id -u)" != 0 ] || [ "${DEPS_AS_USER:-}" = 1 ]; then
	echo "deps: missing ${missing[*]}; run as root:"
	echo "  sudo apt-get install -y --no-install-recommends ${pkgs[*]}"
	exit 1
fi

echo "deps: installing ${pkgs[*]} (missing: ${missing[*]})"
install_packages "${pkgs[@]}"
if [ "${DEPS_DRYRUN:-}" = 1 ]; then
	exit 0
fi
find_missing
if [ "${#missing[@]}" -ne 0 ]; then
	echo "deps: still missing after install: ${missing[*]}" >&2
	exit 1
fi
echo "deps: ok"
