#!/usr/bin/env python3
"""Builds test images for barge's image tests, from busybox-static and generated files.

  make-image.py busybox OUT [--format oci|docker] [--tar] [--compress gzip|zstd|none]
                [--name NAME:TAG] [--user USER] [--index] [--multi-platform] [--docker-types]
                [--layers N] [--implied-parents] [--foreign]
  make-image.py hostile CASE OUT.tar [--canary PATH]
  make-image.py layer two|three OUT.tar

busybox: a 3-layer image (busybox rootfs; files of every type with owners, modes, setuid, xattrs;
then deletions, an opaque dir and a changed file), with --implied-parents a layer whose entries
lack their parent directories, plus --layers N extra small layers.
hostile: one malicious layer tar per CASE (see HOSTILE below).
"""
import argparse, gzip, hashlib, io, json, os, shutil, subprocess, sys, tarfile, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MTIME = 1700000000


def info(name, type_=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, **kw):
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.uid, t.gid, t.mtime = type_, mode, uid, gid, MTIME
    for k, v in kw.items():
        setattr(t, k, v)
    return t


class Layer:
    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def file(self, name, data=b"", **kw):
        t = info(name, **kw)
        t.size = len(data)
        self.tar.addfile(t, io.BytesIO(data))

    def add(self, t):
        self.tar.addfile(t)

    def bytes(self):
        self.tar.close()
        return self.buf.getvalue()


def busybox_rootfs_layer(tmp):
    root = os.path.join(tmp, "rootfs")
    subprocess.run(["sh", os.path.join(HERE, "make-rootfs.sh"), root], check=True)
    layer = Layer()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            arc = os.path.normpath(os.path.join(rel, name))
            t = layer.tar.gettarinfo(path, arcname=arc)
            t.uid = t.gid = 0
            t.uname = t.gname = ""
            t.mtime = MTIME
            if t.isreg():
                with open(path, "rb") as f:
                    layer.tar.addfile(t, f)
            else:
                layer.tar.addfile(t)
    return layer.bytes()


def layer_two():
    l = Layer()
    l.add(info("data", tarfile.DIRTYPE, 0o755))
    l.file("data/a", b"file a\n", mode=0o640, uid=1000, gid=1000,
           pax_headers={"SCHILY.xattr.user.barge": "test-value"})
    l.file("data/b", b"file b\n")
    l.add(info("data/hard", tarfile.LNKTYPE, linkname="data/a"))
    l.add(info("data/link", tarfile.SYMTYPE, 0o777, linkname="a"))
    l.add(info("data/fifo", tarfile.FIFOTYPE, 0o600))
    l.add(info("data/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3))
    # cap_net_bind_service+ep as a v2 security.capability (all bytes < 0x80, as pax stores str).
    cap = "\x01\x00\x00\x02\x00\x04\x00\x00" + "\x00" * 12
    l.file("data/suid", b"#!/bin/sh\n", mode=0o4755)
    l.file("data/cap", b"#!/bin/sh\n", mode=0o755,
           pax_headers={"SCHILY.xattr.security.capability": cap})
    l.file("data/sgid", b"#!/bin/sh\n", mode=0o2750, gid=50)
    l.add(info("data/sticky", tarfile.DIRTYPE, 0o1777))
    l.add(info("opt", tarfile.DIRTYPE, 0o755))
    l.add(info("opt/old", tarfile.DIRTYPE, 0o755))
    l.file("opt/old/x", b"old x\n")
    l.file("opt/old/y", b"old y\n")
    l.file("etc/motd", b"layer two\n")
    return l.bytes()


def layer_three():
    l = Layer()
    l.file("data/.wh.b")
    l.file("opt/old/.wh..wh..opq")
    l.file("opt/old/z", b"new z\n")
    l.file("data/a", b"file a, changed\n", mode=0o640, uid=1000, gid=1000)
    l.file("etc/.wh.motd")
    l.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
           b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    l.file("etc/group", b"root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n")
    l.add(info("home", tarfile.DIRTYPE, 0o755))
    l.add(info("home/app", tarfile.DIRTYPE, 0o750, uid=1000, gid=1000))
    return l.bytes()


def implied_parents_layer():
    """Entries without their parent directories, as some image builders write them: the
    parents must look like the lower layers' (home/app 0750 1000:1000, data/sticky 1777, the
    opaque opt/old), or be plain 0755 root:root where no layer has them."""
    l = Layer()
    l.file("home/app/.profile", b"export APP=1\n", uid=1000, gid=1000)
    l.file("data/sticky/inner/f", b"inner\n")
    l.file("opt/old/w", b"new w\n")
    l.file("newtop/sub/file", b"new\n")
    return l.bytes()


def extra_layer(i):
    l = Layer()
    l.add(info("extra", tarfile.DIRTYPE, 0o755))
    l.file("extra/layer-%03d" % i, b"layer %d\n" % i)
    return l.bytes()


def compress(data, how):
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE,
                              check=True).stdout
    return data


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


LAYER_TYPES = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
               "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
               "none": "application/vnd.oci.image.layer.v1.tar"}
OCI_TYPES = {"index": "application/vnd.oci.image.index.v1+json",
             "manifest": "application/vnd.oci.image.manifest.v1+json",
             "config": "application/vnd.oci.image.config.v1+json"}
# Docker schema2 has no zstd layer type.
DOCKER_TYPES = {"index": "application/vnd.docker.distribution.manifest.list.v2+json",
                "manifest": "application/vnd.docker.distribution.manifest.v2+json",
                "config": "application/vnd.docker.container.image.v1+json",
                "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "none": "application/vnd.docker.image.rootfs.diff.tar"}


def image_config(diff_ids, user, arch="amd64", variant=None):
    extra = {"variant": variant} if variant else {}
    return json.dumps(dict({
        "architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hello-from-image; id -u; pwd"],
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "FOO=bar"],
                   "WorkingDir": "/data", "User": user,
                   "Labels": {"org.example.test": "yes"}, "ExposedPorts": {"80/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": []}, **extra), sort_keys=True).encode()


def write_blob(out, data):
    d = sha(data)
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(out, "blobs", "sha256", d[7:]), "wb") as f:
        f.write(data)
    return {"digest": d, "size": len(data)}


def platform_manifest(out, types, base_layers, arch, variant=None):
    """A manifest for another platform: the busybox layer plus a layer whose /platform file
    names the platform, so a test sees which manifest was picked."""
    l = Layer()
    l.file("platform", ("%s%s\n" % (arch, "/" + variant if variant else "")).encode())
    layers = [base_layers[0], l.bytes()]
    config = image_config([sha(x) for x in layers], "", arch, variant)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": types["manifest"],
        "config": dict(mediaType=types["config"], **write_blob(out, config)),
        "layers": [dict(mediaType=types["gzip"], **write_blob(out, compress(x, "gzip")))
                   for x in layers]}).encode()
    platform = {"os": "linux", "architecture": arch}
    if variant:
        platform["variant"] = variant
    return dict(mediaType=types["manifest"], platform=platform, **write_blob(out, manifest))


def build_busybox(args):
    with tempfile.TemporaryDirectory() as tmp:
        layers = [busybox_rootfs_layer(tmp), layer_two(), layer_three()]
        if args.implied_parents:
            layers.append(implied_parents_layer())
        layers += [extra_layer(i) for i in range(args.layers)]
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        diff_ids = [sha(l) for l in layers]
        config = image_config(diff_ids, args.user)
        name = args.name
        if args.format == "oci":
            with open(os.path.join(out, "oci-layout"), "w") as f:
                json.dump({"imageLayoutVersion": "1.0.0"}, f)
            types = dict(OCI_TYPES, **LAYER_TYPES)
            if args.docker_types:
                types = DOCKER_TYPES
            descs = []
            for l in layers:
                blob = compress(l, args.compress)
                descs.append(dict(mediaType=types[args.compress], **write_blob(out, blob)))
            if args.foreign:
                descs[-1]["mediaType"] = \
                    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
                descs[-1]["urls"] = ["https://example.invalid/layer"]
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": types["manifest"],
                "config": dict(mediaType=types["config"], **write_blob(out, config)),
                "layers": descs}).encode()
            mdesc = dict(mediaType=types["manifest"], **write_blob(out, manifest))
            annotations = {"org.opencontainers.image.ref.name": name} if name else {}
            if args.index or args.multi_platform:
                # A nested index: amd64 and a (missing-blobs) s390x entry must be told apart.
                other = dict(mediaType=types["manifest"], digest="sha256:" + "0" * 64, size=1,
                             platform={"os": "linux", "architecture": "s390x"})
                entries = [other]
                if args.multi_platform:
                    entries += [platform_manifest(out, types, layers, "arm64"),
                                platform_manifest(out, types, layers, "arm", "v6"),
                                platform_manifest(out, types, layers, "arm", "v7")]
                entries.append(dict(platform={"os": "linux", "architecture": "amd64"}, **mdesc))
                index = json.dumps({"schemaVersion": 2, "mediaType": types["index"],
                                    "manifests": entries}).encode()
                top = dict(mediaType=types["index"], **write_blob(out, index))
            else:
                top = mdesc
            if annotations:
                top["annotations"] = annotations
            with open(os.path.join(out, "index.json"), "w") as f:
                json.dump({"schemaVersion": 2, "manifests": [top]}, f)
        else:
            paths = []
            for i, l in enumerate(layers):
                os.makedirs(os.path.join(out, "l%d" % i))
                with open(os.path.join(out, "l%d" % i, "layer.tar"), "wb") as f:
                    f.write(compress(l, args.compress))
                paths.append("l%d/layer.tar" % i)
            cname = sha(config)[7:] + ".json"
            with open(os.path.join(out, cname), "wb") as f:
                f.write(config)
            entry = {"Config": cname, "RepoTags": [name] if name else [], "Layers": paths}
            if args.foreign:
                entry["LayerSources"] = {diff_ids[-1]: {
                    "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                    "size": 1, "digest": "sha256:" + "1" * 64,
                    "urls": ["https://example.invalid/layer"]}}
            with open(os.path.join(out, "manifest.json"), "w") as f:
                json.dump([entry], f)
        if os.path.exists(args.out):
            shutil.rmtree(args.out) if os.path.isdir(args.out) else os.unlink(args.out)
        if args.tar:
            with tarfile.open(args.out, "w") as t:
                for entry in sorted(os.listdir(out)):
                    t.add(os.path.join(out, entry), arcname=entry)
        else:
            shutil.copytree(out, args.out)


# Each case: a list of (TarInfo kwargs, data) built against the canary path on the host.
def build_hostile(args):
    c = args.canary
    l = Layer()
    case = args.case
    if case == "dotdot":
        l.file("../escaped", b"x")
    elif case == "dotdot-deep":
        l.add(info("a", tarfile.DIRTYPE, 0o755))
        l.file("a/../../escaped", b"x")
    elif case == "absolute":
        l.file(c, b"absolute")  # "/host/path": must land inside the layer
    elif case == "symlink-then-file":
        l.add(info("evil", tarfile.SYMTYPE, 0o777, linkname=os.path.dirname(c)))
        l.file("evil/" + os.path.basename(c), b"through symlink")
    elif case == "relative-symlink-then-file":
        l.add(info("evil", tarfile.SYMTYPE, 0o777,
                   linkname="../" * 30 + os.path.dirname(c).lstrip("/")))
        l.file("evil/" + os.path.basename(c), b"through symlink")
    elif case == "hardlink-outside":
        l.add(info("h", tarfile.LNKTYPE, linkname=c))
    elif case == "hardlink-dotdot":
        l.add(info("h", tarfile.LNKTYPE, linkname="../../../../.." + c))
    elif case == "hardlink-through-symlink":
        l.add(info("s", tarfile.SYMTYPE, 0o777, linkname=os.path.dirname(c)))
        l.add(info("h", tarfile.LNKTYPE, linkname="s/" + os.path.basename(c)))
    elif case == "symlink-replaced-by-dir":
        l.add(info("d", tarfile.SYMTYPE, 0o777, linkname=os.path.dirname(c)))
        l.add(info("d", tarfile.DIRTYPE, 0o755))
        l.file("d/" + os.path.basename(c), b"in the dir")
    elif case == "file-over-symlink":
        l.add(info("f", tarfile.SYMTYPE, 0o777, linkname=c))
        l.file("f", b"replaced", mode=0o777, uid=4321)
    elif case == "chown-symlink":
        l.add(info("l", tarfile.SYMTYPE, 0o777, linkname=c, uid=4321, gid=4321))
    elif case == "whiteout-dotdot":
        l.add(info("a", tarfile.DIRTYPE, 0o755))
        l.file("a/.wh...")
    elif case == "whiteout-dot":
        l.file(".wh..")
    elif case == "whiteout-through-symlink":
        l.add(info("evil", tarfile.SYMTYPE, 0o777, linkname=os.path.dirname(c)))
        l.file("evil/.wh." + os.path.basename(c))
    elif case == "opaque-through-symlink":
        l.add(info("evil", tarfile.SYMTYPE, 0o777, linkname=os.path.dirname(c)))
        l.file("evil/.wh..wh..opq")
    elif case == "overlay-xattr":
        l.add(info("d", tarfile.DIRTYPE, 0o755,
                   pax_headers={"SCHILY.xattr.trusted.overlay.redirect": "/etc"}))
    elif case == "sparse-huge":
        with tempfile.TemporaryDirectory() as tmp:
            big = os.path.join(tmp, "huge")
            with open(big, "wb") as f:
                f.truncate(64 << 30)
                f.seek(1 << 30)
                f.write(b"middle")
            subprocess.run(["tar", "--sparse", "--format=posix", "-C", tmp, "-cf", args.out,
                            "huge"], check=True)
        return
    else:
        sys.exit("unknown case " + case)
    with open(args.out, "wb") as f:
        f.write(l.bytes())


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("busybox")
    b.add_argument("out")
    b.add_argument("--format", choices=["oci", "docker"], default="oci")
    b.add_argument("--tar", action="store_true")
    b.add_argument("--compress", choices=["gzip", "zstd", "none"], default="gzip")
    b.add_argument("--name", default="")
    b.add_argument("--user", default="")
    b.add_argument("--index", action="store_true")
    b.add_argument("--multi-platform", action="store_true",
                   help="index with arm64, arm/v6 and arm/v7 manifests too (implies --index)")
    b.add_argument("--docker-types", action="store_true",
                   help="Docker schema2 media types in the OCI layout")
    b.add_argument("--layers", type=int, default=0)
    b.add_argument("--foreign", action="store_true", help="mark the top layer non-distributable")
    b.add_argument("--implied-parents", action="store_true",
                   help="add a layer whose entries lack their parent directories")
    h = sub.add_parser("hostile")
    h.add_argument("case")
    h.add_argument("out")
    h.add_argument("--canary", default="/tmp/barge-canary/file")
    y = sub.add_parser("layer")
    y.add_argument("which", choices=["two", "three"])
    y.add_argument("out")
    args = p.parse_args()
    if args.cmd == "busybox":
        build_busybox(args)
    elif args.cmd == "hostile":
        build_hostile(args)
    else:
        with open(args.out, "wb") as f:
            f.write(layer_two() if args.which == "two" else layer_three())


if __name__ == "__main__":
    main()
