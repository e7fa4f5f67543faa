#!/usr/bin/env bash
# ports/release.sh on a local archive: the port it writes downloads the tag
# with vcpkg_from_github and the archive's SHA512, has no trace of the
# overlay form's local source, and is otherwise the port itself.
#   vcpkg_release.sh SOURCE WORK
set -euo pipefail
source=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
tar -czf "$work/v1.0.0.tar.gz" -C "$source" LICENSE
sha512=$(sha512sum "$work/v1.0.0.tar.gz" | cut -d' ' -f1)
STOREWATCH_RELEASE_URL="file://$work/v1.0.0.tar.gz" "$source/ports/release.sh" example/storewatch v1.0.0 "$work/ports"
port=$work/ports/storewatch/portfile.cmake
fail() { echo "vcpkg_release.sh: $*" >&2; exit 1; }
grep -qx "  SHA512 $sha512" "$port" || fail "the released port does not carry the archive's SHA512"
grep -qx '  REF "v1.0.0"' "$port" || fail "the released port does not download the tag"
grep -qx '  REPO example/storewatch' "$port" || fail "the released port does not name the repository"
! grep -q 'STOREWATCH_SOURCE_PATH\|source: ' "$port" || fail "the released port keeps the overlay form's source"
# (A whole line: the archive's own SHA512 may start with 0.)
! grep -qx '  SHA512 0' "$port" || fail "the released port has the placeholder SHA512 0"
# Everything after the source block is the port's own.
diff <(sed '1,/^# source: end$/d' "$source/ports/storewatch/portfile.cmake") \
  <(awk 'after { print } /^  HEAD_REF main$/ { getline; after = 1 }' "$port") \
  || fail "the released port differs from the overlay port after the source block"
cmp "$source/ports/storewatch/vcpkg.json" "$work/ports/storewatch/vcpkg.json" || fail "vcpkg.json differs"
echo "vcpkg_release.sh: the released port downloads example/storewatch v1.0.0, SHA512 $sha512"
