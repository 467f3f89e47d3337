#!/usr/bin/env python3
"""compare-trees.py A B [--clock-since EPOCH]: exits 1 listing differences between two directory
trees: paths, types, modes, owners, contents, symlink targets, device numbers, mtimes (whole
seconds) and xattrs (but overlayfs' own trusted.overlay.*). The roots' own attributes are not
compared. With --clock-since, a directory whose mtime in B is EPOCH or later got it from the clock
while B was unpacked (umoci leaves parents it had to create, or created entries in, that way),
not from the image, so its mtime is not compared."""
import hashlib, os, stat, sys


def describe(path):
    st = os.lstat(path)
    d = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
         "gid": st.st_gid}
    d["mtime"] = int(st.st_mtime)
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            d["sha"] = hashlib.sha256(f.read()).hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        d["target"] = os.readlink(path)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    if not stat.S_ISLNK(st.st_mode):
        d["xattrs"] = {k: os.getxattr(path, k, follow_symlinks=False)
                       for k in sorted(os.listxattr(path, follow_symlinks=False))
                       if not k.startswith("trusted.overlay.")}
    return d


def tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = describe(path)
    return out


args = sys.argv[1:]
since = None
if "--clock-since" in args:
    i = args.index("--clock-since")
    since = int(args[i + 1])
    del args[i:i + 2]
a, b = tree(args[0]), tree(args[1])
for path, d in b.items():
    if since is not None and d["type"] == stat.S_IFDIR and d["mtime"] >= since and path in a:
        del d["mtime"]
        a[path].pop("mtime", None)
diffs = []
for path in sorted(set(a) | set(b)):
    if path not in a or path not in b:
        diffs.append("%s: only in %s" % (path, args[0] if path in a else args[1]))
    elif a[path] != b[path]:
        keys = [k for k in set(a[path]) | set(b[path]) if a[path].get(k) != b[path].get(k)]
        diffs.append("%s: %s" % (path, ", ".join("%s %r != %r" % (k, a[path].get(k),
                                                               b[path].get(k)) for k in keys)))
print("\n".join(diffs) if diffs else "%d entries equal" % len(a))
sys.exit(1 if diffs else 0)
