#!/usr/bin/env bash
# Makes the GnuPG-generated TEST keys (bob: Ed25519, carol: RSA-3072) in keys/.
# Never use them for real. Keys are random: re-running replaces them, and the
# fixtures signed with them must be re-made (fixtures/make-fixtures.sh).
set -euo pipefail
cd "$(dirname "$0")"
export GNUPGHOME=$(mktemp -d)
trap 'rm -rf "$GNUPGHOME"' EXIT
T='--faked-system-time 20260101T000000!'
gen() { # name uid algo
  gpg --batch $T --pinentry-mode loopback --passphrase '' --quick-gen-key "$2" "$3" sign never 2>/dev/null
  gpg --batch --armor --export "$2" > "$1.pub.asc"
  gpg --batch --armor --pinentry-mode loopback --passphrase '' --export-secret-keys "$2" > "$1.sec.asc"
  echo "$1: $(gpg --batch --with-colons --fingerprint "$2" | awk -F: '/^fpr/ {print $10; exit}')"
}
gen bob "Bob Example (regmail TEST key) <bob@blue-registrar.test>" ed25519
gen carol "Carol Example (regmail TEST key) <carol@coral-names.test>" rsa3072
