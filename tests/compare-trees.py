#!/usr/bin/env python3
"""compare-trees.py A B: exits 1 listing differences between two directory trees (paths, types,
modes, owners, contents, symlink targets, device numbers, user.* xattrs). Directory mtimes and
the roots' own attributes are not compared (an overlay's implicit parents differ legitimately)."""
import hashlib, os, stat, sys


def describe(path):
    st = os.lstat(path)
    d = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
         "gid": st.st_gid}
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            d["sha"] = hashlib.sha256(f.read()).hexdigest()
        d["mtime"] = int(st.st_mtime)
    elif stat.S_ISLNK(st.st_mode):
        d["target"] = os.readlink(path)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    if not stat.S_ISLNK(st.st_mode):
        d["xattrs"] = {k: os.getxattr(path, k, follow_symlinks=False)
                       for k in sorted(os.listxattr(path, follow_symlinks=False))
                       if k.startswith("user.")}
    return d


def tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = describe(path)
    return out


a, b = tree(sys.argv[1]), tree(sys.argv[2])
diffs = []
for path in sorted(set(a) | set(b)):
    if path not in a or path not in b:
        diffs.append("%s: only in %s" % (path, sys.argv[1] if path in a else sys.argv[2]))
    elif a[path] != b[path]:
        keys = [k for k in set(a[path]) | set(b[path]) if a[path].get(k) != b[path].get(k)]
        diffs.append("%s: %s" % (path, ", ".join("%s %r != %r" % (k, a[path].get(k),
                                                               b[path].get(k)) for k in keys)))
print("\n".join(diffs) if diffs else "%d entries equal" % len(a))
sys.exit(1 if diffs else 0)
