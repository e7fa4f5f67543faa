#!/usr/bin/env bash
# Writes the release form of the vcpkg port: ports/storewatch/ with its
# source block replaced by a vcpkg_from_github download of TAG, with the
# archive's SHA512, ready for a registry.
#   ports/release.sh OWNER/NAME TAG OUT_DIR
# The archive is GitHub's tag tarball; STOREWATCH_RELEASE_URL overrides
# where it is fetched from (the packaging test gives a local file:// URL).
set -euo pipefail
repo=$1 tag=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
url=${STOREWATCH_RELEASE_URL:-https://github.com/$repo/archive/$tag.tar.gz}
archive=$(mktemp)
trap 'rm -f "$archive"' EXIT
curl --fail --silent --show-error --location "$url" -o "$archive"
sha512=$(sha512sum "$archive" | cut -d' ' -f1)
rm -rf "$out/storewatch"
mkdir -p "$out"
cp -r "$here/storewatch" "$out/storewatch"
awk -v repo="$repo" -v tag="$tag" -v sha="$sha512" '
  /^# source: begin$/ {
    print "vcpkg_from_github("
    print "  OUT_SOURCE_PATH SOURCE_PATH"
    print "  REPO " repo
    print "  REF \"" tag "\""
    print "  SHA512 " sha
    print "  HEAD_REF main"
    print ")"
    skip = 1
    next
  }
  /^# source: end$/ { skip = 0; next }
  !skip
' "$here/storewatch/portfile.cmake" >"$out/storewatch/portfile.cmake"
echo "ports/release.sh: $out/storewatch downloads $repo $tag (SHA512 $sha512)"
