#!/usr/bin/env bash
# Usage: images/linux/extract-vmlinux.sh BZIMAGE OUT
#
# Writes the kernel's ELF image (vmlinux) that a bzImage carries compressed,
# for booting Linux as an ELF (Debian ships only the bzImage). The payload's
# place comes from the boot protocol header (setup_sects at 0x1f1,
# payload_offset and payload_length at 0x248, protocol 2.08+); its format
# from its magic bytes. The kernel's build appends the uncompressed size
# (4 bytes) to the payload, which the decompressors are not given.
set -euo pipefail
in=${1:?usage: extract-vmlinux.sh BZIMAGE OUT}
out=${2:?usage: extract-vmlinux.sh BZIMAGE OUT}
die() { echo "extract-vmlinux: $*" >&2; exit 1; }

field() { od -An -tu"$2" -j "$1" -N "$2" "$in" | tr -d ' '; }
[ "$(od -An -c -j $((0x202)) -N 4 "$in" | tr -d ' ')" = HdrS ] || die "$in is not a bzImage (no HdrS)"
setup_sects=$(field $((0x1f1)) 1)
[ "$setup_sects" -ne 0 ] || setup_sects=4
offset=$(( (setup_sects + 1) * 512 + $(field $((0x248)) 4) ))
length=$(field $((0x24c)) 4)
[ "$length" -gt 4 ] || die "$in has no payload (boot protocol older than 2.08?)"

payload() { dd if="$in" iflag=skip_bytes,count_bytes skip="$offset" count="$1" bs=64k status=none; }
magic=$(payload 6 | od -An -tx1 | tr -d ' \n')
case $magic in
    1f8b*)         dec=(gzip -dc);;
    fd377a585a00)  dec=(xz -dc);;
    28b52ffd*)     dec=(zstd -qdc);;
    02214c18*)     dec=(lz4 -dc);;
    425a68*)       dec=(bzip2 -dc);;
    5d0000*)       dec=(xz -dc --format=lzma);;
    *) die "unknown payload compression (magic $magic)";;
esac
payload $((length - 4)) | "${dec[@]}" >"$out.tmp" || die "cannot decompress the payload with ${dec[0]}"
[ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || { rm -f "$out.tmp"; die "the payload is not an ELF image"; }
mv "$out.tmp" "$out"
