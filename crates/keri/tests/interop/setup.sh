#!/usr/bin/env bash
# Installs keripy 1.1.17 into a Python venv for the welkin-keri interop tests.
#
#   setup.sh VENV_DIR
#
# Idempotent and quick once done (checks the installed version), serialized with a lock
# file so parallel tests do not race. Needs python3 (>= 3.10, with the venv module), the
# libsodium shared library (Debian: libsodium23; installed with apt-get when running as
# root) and access to PyPI.
set -euo pipefail

venv="${1:?usage: setup.sh VENV_DIR}"
version="1.1.17"
mkdir -p "$(dirname "$venv")"

exec 9>"$venv.lock"
flock 9

ready() {
    [ -x "$venv/bin/python" ] &&
        "$venv/bin/python" -c "import sys, keri; sys.exit(keri.__version__ != '$version')" 2>/dev/null
}

if ready; then
    exit 0
fi

if ! ldconfig -p 2>/dev/null | grep -q 'libsodium\.so'; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup.sh: installing libsodium23 with apt-get" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsodium23 >&2
    else
        echo "setup.sh: libsodium is missing: install it (Debian: apt-get install libsodium23)" >&2
        exit 1
    fi
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "setup.sh: keripy $version needs python3 >= 3.10, found $(python3 --version)" >&2
    exit 1
}

rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "keri==$version" >&2
ready || { echo "setup.sh: keri $version did not import after installation" >&2; exit 1; }
