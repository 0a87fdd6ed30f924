#!/usr/bin/env bash
# Publishes the AOT binary with its symbol table and without DWARF, for profilers that cannot read the DWARF 5 of
# the usual build's appliance.dbg (valgrind 3.19): callgrind then names every function, managed ones included.
#   perf/symbol-build.sh OUTDIR
#   KEEP=/tmp/h1.cg TOOL=h1 perf/instructions.sh OUTDIR/appliance direct CERT KEY 5000 && callgrind_annotate /tmp/h1.cg
set -euo pipefail
out=${1:?usage: perf/symbol-build.sh OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Its own intermediate and output folders: sharing obj/ with the usual build left an unstripped native binary there
# that the next ordinary publish took as up to date and copied to artifacts/publish (lintian then fails the .deb).
dotnet publish "$root/src/Appliance/Appliance.csproj" -c Release -r linux-x64 -p:StripSymbols=false \
  -p:IntermediateOutputPath="$tmp/obj/" -p:OutputPath="$tmp/bin/" -o "$tmp/out" -nologo -v quiet >&2
mkdir -p "$out"
objcopy --strip-debug "$tmp/out/appliance" "$out/appliance"
cp "$tmp"/out/*.so "$out/" 2>/dev/null || true
echo "$out/appliance (symbol table, no DWARF)"
