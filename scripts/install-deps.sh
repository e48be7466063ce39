#!/bin/sh
# Install every Debian 12 package that building and testing rxjob needs. Idempotent; run as
# root (or through sudo). Packages already present are left alone, and apt's lists are only
# refreshed when something is missing. slurm-wlm and munge are for the Slurm executor's tests
# (tests/check_slurm.sh brings up a one-node cluster with scripts/slurm/up.sh); their services
# are not started here. clang and libclang-rt-14-dev (libFuzzer and the sanitizer runtimes, only a
# Recommends of clang, so named here) are for fuzz/ and tests/check_fuzz.sh. openssl (the
# command) makes tests/check_tcp.sh's certificates and tokens. task-spooler, nq and gnuplot-nox
# are for bench/compare (rxjob beside its peers, and its chart). musl-tools builds the task
# supervisor, rxjob-shim, with musl (CMakeLists.txt RX_MUSL_SHIM; without it, glibc). strace
# counts the writes of an error line in tests/check_cli.sh. libcurl4 and libssl3 are named
# although the -dev packages pull them in: librxjob does not link them but dlopen()s them by
# SONAME at run time (src/client/dynlib.c), so nothing else records that it needs them.
set -eu

PACKAGES="build-essential cmake pkg-config clang-format libcmocka-dev libssl-dev \
libsqlite3-dev libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev coreutils gzip curl \
procps python3 slurm-wlm munge clang libclang-rt-14-dev openssl task-spooler nq gnuplot-nox \
musl-tools strace libcurl4 libssl3"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
fi
echo "install-deps: installing:$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
