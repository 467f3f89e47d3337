#!/bin/sh
# Assembles a minimal busybox rootfs in DIR from Debian's busybox-static (no download).
# Usage: make-rootfs.sh DIR
set -eu
dir=${1:?usage: make-rootfs.sh DIR}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || busybox=/bin/busybox
[ -x "$busybox" ] || { echo "make-rootfs: busybox-static is not installed" >&2; exit 1; }
mkdir -p "$dir/bin" "$dir/sbin" "$dir/etc" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/tmp" \
         "$dir/root" "$dir/var" "$dir/run" "$dir/usr/bin" "$dir/usr/sbin"
chmod 1777 "$dir/tmp"
cp "$busybox" "$dir/bin/busybox"
for applet in $("$dir/bin/busybox" --list); do
  [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
