// The image store end to end through the barge binary: every import format, digest and diff_id
// failures leave no record, overlay sharing and isolation, many layers, the umoci oracle, and a
// bundle from an image run by `barge run`.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Result {
  int status = -1;
  std::string out;  // stdout and stderr
};

Result sh(const std::string& command) {
  Result r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> out;
  if (DIR* dir = ::opendir(path.c_str())) {
    while (dirent* e = ::readdir(dir))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") out.push_back(e->d_name);
    ::closedir(dir);
  }
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool mounted_under(const std::string& prefix) {
  return slurp("/proc/self/mountinfo").find(prefix) != std::string::npos;
}

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    char pattern[] = "/tmp/barge-image-it-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    store_ = dir_ + "/store";
  }
  void TearDown() override {
    if (dir_.empty()) return;
    // Unmount whatever a failed test left, then check and clean.
    for (int i = 0; i < 8 && mounted_under(dir_); ++i)
      sh("grep -o ' " + dir_ + "[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l");
    EXPECT_FALSE(mounted_under(dir_)) << "mounts left under " << dir_;
    sh("rm -rf " + shell_quote(dir_));
  }

  Result barge(const std::string& args) {
    return sh(std::string(BARGE_BINARY) + " image --storage " + shell_quote(store_) + " " + args);
  }
  std::string make_image(const std::string& name, const std::string& args) {
    std::string out = dir_ + "/" + name;
    Result r = sh(std::string("/usr/bin/python3 ") + BARGE_TEST_SCRIPTS +
                  "/make-image.py busybox " + shell_quote(out) + " " + args);
    EXPECT_EQ(r.status, 0) << r.out;
    return out;
  }
  nlohmann::json images() {
    Result r = barge("list --format json");
    EXPECT_EQ(r.status, 0) << r.out;
    auto start = r.out.find('[');
    return nlohmann::json::parse(r.out.substr(start == std::string::npos ? 0 : start));
  }
  size_t layer_count() { return list_dir(store_ + "/layers/sha256").size(); }

  std::string dir_;
  std::string store_;
};

TEST_F(ImageStoreTest, ImportsEveryFormatAndSharesLayersByDiffId) {
  struct Case {
    std::string file, args, name;
  };
  std::vector<Case> cases = {
      {"oci-dir", "--name a:gzip", "a:gzip"},
      {"oci.tar", "--tar --compress zstd --name a:zstd", "a:zstd"},
      {"oci-plain.tar", "--tar --compress none --name a:plain", "a:plain"},
      {"oci-index", "--index --name a:index", "a:index"},
      {"docker.tar", "--format docker --tar --compress none --name a:docker", "a:docker"},
      {"docker-gz", "--format docker --compress gzip --name a:dockergz", "a:dockergz"},
      {"oci-docker-types", "--docker-types --index --name a:dtypes", "a:dtypes"},
      {"oci-docker-plain.tar", "--docker-types --tar --compress none --name a:dplain", "a:dplain"},
  };
  for (const auto& c : cases) {
    std::string path = make_image(c.file, c.args);
    Result r = barge("import " + shell_quote(path));
    ASSERT_EQ(r.status, 0) << c.file << ": " << r.out;
  }
  auto list = images();
  std::vector<std::string> names;
  for (const auto& image : list)
    for (const auto& n : image["names"]) names.push_back(n);
  for (const auto& c : cases)
    EXPECT_NE(std::find(names.begin(), names.end(), c.name), names.end()) << c.name;
  // Same uncompressed content in every format: one unpacked directory per layer.
  EXPECT_EQ(layer_count(), 3u);
  EXPECT_TRUE(list_dir(store_ + "/tmp").empty());
  // Each import gives its layers their media type as the manifest (or the blob) says.
  for (const auto& image : list) {
    Result r = barge("inspect " + std::string(image["id"]));
    ASSERT_EQ(r.status, 0) << r.out;
    auto doc = nlohmann::json::parse(r.out);
    std::string type = doc["manifest"]["layers"][0]["mediaType"];
    EXPECT_NE(type.find("tar"), std::string::npos) << type;
  }
}

// A failed import leaves the store exactly as it was: no record, no blob (manifest and config
// included), no layer, nothing in tmp/.
void expect_store_empty(const std::string& store) {
  EXPECT_TRUE(list_dir(store + "/blobs/sha256").empty()) << "blobs of a failed import stored";
  EXPECT_TRUE(list_dir(store + "/layers/sha256").empty()) << "layers of a failed import stored";
  EXPECT_TRUE(list_dir(store + "/tmp").empty()) << "leftovers in tmp/";
}

TEST_F(ImageStoreTest, CorruptBlobIsRejectedNamingItsDigestAndNothingIsRecorded) {
  std::string path = make_image("oci", "--name c:1");
  // Flip a byte in the largest blob (the busybox layer).
  Result big = sh("ls -S " + path + "/blobs/sha256 | head -1");
  std::string hex = big.out.substr(0, 64);
  ASSERT_EQ(sh("printf 'X' | dd of=" + path + "/blobs/sha256/" + hex +
               " bs=1 seek=100 conv=notrunc status=none")
                .status,
            0);
  Result r = barge("import " + path);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("sha256:" + hex), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mismatch"), std::string::npos) << r.out;
  EXPECT_TRUE(images().empty());
  expect_store_empty(store_);
  // Truncated: the size check names it too.
  ASSERT_EQ(sh("truncate -s 1000 " + path + "/blobs/sha256/" + hex).status, 0);
  r = barge("import " + path);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("sha256:" + hex), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("truncated"), std::string::npos) << r.out;
  EXPECT_TRUE(images().empty());
  expect_store_empty(store_);
}

TEST_F(ImageStoreTest, LayoutWithTwoImagesIsImportedWholeOrNotAtAll) {
  std::string both = make_image("two-images", "--name a:1");
  std::string second = make_image("second", "--name b:1 --user nobody");
  ASSERT_EQ(sh("cp -n " + second + "/blobs/sha256/* " + both +
               "/blobs/sha256/ && jq -c "
               "--slurpfile b " +
               second + "/index.json '.manifests += $b[0].manifests' " + both + "/index.json > " +
               both + "/i && mv " + both + "/i " + both + "/index.json")
                .status,
            0);
  std::string intact = dir_ + "/two-images-intact";
  ASSERT_EQ(sh("cp -a " + both + " " + intact).status, 0);
  // The second image's config is a blob only that image has.
  auto trim = [](std::string text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    return text;
  };
  std::string manifest = trim(sh("jq -r '.manifests[0].digest' " + second + "/index.json").out);
  std::string config =
      trim(sh("jq -r .config.digest " + second + "/blobs/sha256/" + manifest.substr(7)).out);
  ASSERT_EQ(config.size(), 71u) << config;
  ASSERT_EQ(sh("printf 'X' | dd of=" + both + "/blobs/sha256/" + config.substr(7) +
               " bs=1 seek=1 conv=notrunc status=none")
                .status,
            0);
  Result r = barge("import " + both);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find(config), std::string::npos) << r.out;
  EXPECT_TRUE(images().empty()) << "the first image was kept";
  expect_store_empty(store_);

  // Control: intact, the same layout gives both images.
  r = barge("import " + intact);
  ASSERT_EQ(r.status, 0) << r.out;
  std::vector<std::string> names;
  for (const auto& image : images())
    for (const auto& n : image["names"]) names.push_back(n);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a:1", "b:1"}));
}

TEST_F(ImageStoreTest, TruncatedTarOfALayoutIsRejectedAndNothingIsImported) {
  std::string path = make_image("oci.tar", "--tar --name t:1");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  ASSERT_EQ(::truncate(path.c_str(), st.st_size / 2), 0);
  Result r = barge("import " + path);
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_TRUE(images().empty());
  expect_store_empty(store_);
}

TEST_F(ImageStoreTest, DiffIdMismatchIsRejected) {
  // docker archives name layers by path, not digest: only the diff_id check can catch this.
  std::string path = make_image("docker", "--format docker --compress none --name d:1");
  // Change one byte of a file's content (a header change would already break the tar).
  std::string tar = path + "/l1/layer.tar";
  Result offset = sh("grep -obUa 'file b' " + tar + " | head -1 | cut -d: -f1");
  ASSERT_FALSE(offset.out.empty());
  std::string seek = offset.out.substr(0, offset.out.find('\n'));
  ASSERT_EQ(
      sh("printf 'X' | dd of=" + tar + " bs=1 seek=" + seek + " conv=notrunc status=none").status,
      0);
  Result r = barge("import " + path);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("rootfs.diff_ids"), std::string::npos) << r.out;
  EXPECT_TRUE(images().empty());
  expect_store_empty(store_);
}

TEST_F(ImageStoreTest, ForeignLayerIsRejectedClearly) {
  std::string path = make_image("oci", "--foreign --name f:1");
  Result r = barge("import " + path);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("non-distributable"), std::string::npos) << r.out;
  EXPECT_TRUE(images().empty());
  expect_store_empty(store_);
  path = make_image("docker", "--format docker --foreign --name f:2");
  r = barge("import " + path);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("non-distributable/foreign"), std::string::npos) << r.out;
  EXPECT_TRUE(images().empty());
  expect_store_empty(store_);
}

TEST_F(ImageStoreTest, WrongPlatformIsRejected) {
  std::string path = make_image("oci", "--index --name p:1");
  Result r = barge("import --platform linux/ppc64le " + path);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("linux/ppc64le"), std::string::npos) << r.out;
  expect_store_empty(store_);
}

TEST_F(ImageStoreTest, PlatformPicksItsManifestFromANestedIndex) {
  // index.json -> index -> {s390x (blobs missing), arm64, arm/v6, arm/v7, amd64}; the
  // non-amd64 images have a /platform file naming themselves.
  for (const char* types : {"", "--docker-types"}) {
    std::string path = make_image("multi", std::string("--multi-platform --name m ") + types);
    struct Case {
      std::string platform, name, recorded, file;
      size_t layers;
    };
    for (const Case& c : {Case{"", "m:amd64", "linux/amd64", "", 3},
                          Case{"linux/arm64", "m:arm64", "linux/arm64", "arm64\n", 2},
                          Case{"linux/arm/v7", "m:v7", "linux/arm/v7", "arm/v7\n", 2},
                          Case{"linux/arm/v6", "m:v6", "linux/arm/v6", "arm/v6\n", 2}}) {
      std::string flag = c.platform.empty() ? "" : "--platform " + c.platform + " ";
      Result r = barge("import " + flag + "--name " + c.name + " " + path);
      ASSERT_EQ(r.status, 0) << c.name << " " << types << ": " << r.out;
      auto doc = nlohmann::json::parse(barge("inspect " + c.name).out);
      EXPECT_EQ(doc["platform"], c.recorded) << c.name;
      EXPECT_EQ(doc["layers"].size(), c.layers) << c.name;
      std::string mnt = dir_ + "/mnt";
      ASSERT_EQ(barge("mount " + c.name + " " + mnt).status, 0);
      if (c.file.empty())
        EXPECT_FALSE(std::ifstream(mnt + "/platform").good()) << c.name;
      else
        EXPECT_EQ(slurp(mnt + "/platform"), c.file) << c.name;
      EXPECT_EQ(barge("unmount " + mnt).status, 0);
    }
    // The busybox layer is shared by every platform's image: 3 + one per other platform.
    EXPECT_EQ(layer_count(), 6u) << types;
    for (const char* name : {"m:amd64", "m:arm64", "m:v7", "m:v6"})
      EXPECT_EQ(barge(std::string("rm ") + name).status, 0);
    expect_store_empty(store_);
  }
}

// The rootfs at mnt is the multi-layer test image: what umoci unpacks of it, deletions and the
// opaque dir applied, parents a layer left out looking like the layers' below.
void expect_oracle_tree(const std::string& image, const std::string& mnt,
                        const std::string& umoci) {
  std::string since = std::to_string(::time(nullptr));
  Result u = sh("umoci unpack --image " + image + ":latest " + umoci);
  ASSERT_EQ(u.status, 0) << u.out;
  Result cmp = sh(std::string("/usr/bin/python3 ") + BARGE_TEST_SCRIPTS + "/compare-trees.py " +
                  mnt + " " + umoci + "/rootfs --clock-since " + since);
  EXPECT_EQ(cmp.status, 0) << cmp.out;
  EXPECT_FALSE(std::ifstream(mnt + "/data/b").good());
  EXPECT_FALSE(std::ifstream(mnt + "/etc/motd").good());
  EXPECT_FALSE(std::ifstream(mnt + "/opt/old/x").good());
  EXPECT_EQ(slurp(mnt + "/opt/old/z"), "new z\n");
  EXPECT_EQ(slurp(mnt + "/opt/old/w"), "new w\n");
  char cap[32];
  EXPECT_EQ(::getxattr((mnt + "/data/cap").c_str(), "security.capability", cap, sizeof cap), 20)
      << "file capabilities lost";
  struct stat st {};
  ASSERT_EQ(::stat((mnt + "/home/app").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_uid, 1000u);
  ASSERT_EQ(::stat((mnt + "/data/sticky").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
}

TEST_F(ImageStoreTest, OverlayMatchesUmociUnpack) {
  if (sh("command -v umoci").status != 0) GTEST_SKIP() << "umoci not installed";
  std::string path = make_image("oci", "--implied-parents --name latest");
  ASSERT_EQ(barge("import --name oracle:1 " + path).status, 0);
  ASSERT_EQ(barge("mount oracle:1 " + dir_ + "/mnt").status, 0);
  expect_oracle_tree(path, dir_ + "/mnt", dir_ + "/umoci");
  EXPECT_EQ(barge("unmount " + dir_ + "/mnt").status, 0);
}

TEST_F(ImageStoreTest, CopyWhereOverlayfsCannotBeUsedMatchesUmociToo) {
  if (sh("command -v umoci").status != 0) GTEST_SKIP() << "umoci not installed";
  std::string path = make_image("oci", "--implied-parents --name latest");
  ASSERT_EQ(barge("import --name copy:1 " + path).status, 0);
  // The writable layers go to an overlayfs, which overlayfs refuses as an upper layer (as for a
  // store inside a container's own overlay root).
  std::string o = dir_ + "/o";
  ASSERT_EQ(
      sh("mkdir -p " + o + "/l " + o + "/u " + o + "/w && mount -t overlay overlay -o " +
         "lowerdir=" + o + "/l,upperdir=" + o + "/u,workdir=" + o + "/w " + store_ + "/mounts")
          .status,
      0);
  Result m = barge("mount copy:1 " + dir_ + "/mnt");
  ASSERT_EQ(m.status, 0) << m.out;
  EXPECT_NE(m.out.find("overlayfs cannot be used"), std::string::npos) << m.out;
  expect_oracle_tree(path, dir_ + "/mnt", dir_ + "/umoci");
  std::ofstream(dir_ + "/mnt/written") << "written-through-the-copy";
  EXPECT_EQ(sh("grep -rl written-through-the-copy " + store_ + "/layers").out, "")
      << "a write reached a layer";
  EXPECT_EQ(barge("unmount " + dir_ + "/mnt").status, 0);
  EXPECT_TRUE(list_dir(store_ + "/mounts").empty());
  EXPECT_EQ(sh("umount " + store_ + "/mounts").status, 0);
  EXPECT_FALSE(mounted_under(dir_));
}

TEST_F(ImageStoreTest, TwoMountsShareLowersAndSeeOnlyTheirOwnWrites) {
  std::string path = make_image("oci", "--name s:1");
  ASSERT_EQ(barge("import " + path).status, 0);
  ASSERT_EQ(barge("mount s:1 " + dir_ + "/one").status, 0);
  ASSERT_EQ(barge("mount s:1 " + dir_ + "/two").status, 0);
  std::ofstream(dir_ + "/one/written") << "one";
  ASSERT_EQ(::unlink((dir_ + "/one/data/a").c_str()), 0);
  ASSERT_EQ(sh("rm -rf " + dir_ + "/one/opt/old && mkdir " + dir_ + "/one/opt/old").status, 0);
  EXPECT_FALSE(std::ifstream(dir_ + "/two/written").good());
  EXPECT_EQ(slurp(dir_ + "/two/data/a"), "file a, changed\n");
  EXPECT_EQ(slurp(dir_ + "/two/opt/old/z"), "new z\n");
  // The deletions are whiteouts (and an opaque dir) in one's upper layer, which hide the lowers.
  struct stat st {};
  EXPECT_NE(::lstat((dir_ + "/one/data/a").c_str(), &st), 0);
  EXPECT_TRUE(list_dir(dir_ + "/one/opt/old").empty());
  Result upper = sh("find " + store_ + "/mounts -path '*/upper/data/a' -type c");
  EXPECT_NE(upper.out.find("/upper/data/a"), std::string::npos) << "no whiteout: " << upper.out;
  Result old = sh("find " + store_ + "/mounts -path '*/upper/opt/old' -type d");
  ASSERT_FALSE(old.out.empty()) << "opt/old not in the upper layer";
  char opaque[4] = {};
  EXPECT_EQ(::getxattr(old.out.substr(0, old.out.find('\n')).c_str(), "trusted.overlay.opaque",
                       opaque, sizeof opaque),
            1);
  EXPECT_EQ(opaque[0], 'y') << "opt/old is not opaque in the upper layer";
  EXPECT_EQ(list_dir(store_ + "/mounts").size(), 2u);
  EXPECT_EQ(layer_count(), 3u);
  // The layers are in use: rm keeps them until the mounts go.
  ASSERT_EQ(barge("rm s:1").status, 0);
  EXPECT_EQ(layer_count(), 3u);
  EXPECT_EQ(slurp(dir_ + "/one/written"), "one");
  EXPECT_EQ(barge("unmount " + dir_ + "/one").status, 0);
  EXPECT_EQ(barge("unmount " + dir_ + "/two").status, 0);
  EXPECT_FALSE(mounted_under(dir_));
  EXPECT_TRUE(list_dir(store_ + "/mounts").empty());
  EXPECT_EQ(barge("prune").status, 0);
  EXPECT_EQ(layer_count(), 0u);
  EXPECT_TRUE(list_dir(store_ + "/blobs/sha256").empty());
}

// The fstype mounted at path ("" when none).
std::string fstype_at(const std::string& path) {
  std::istringstream mountinfo(slurp("/proc/self/mountinfo"));
  std::string line, found;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string field; fields >> field;) f.push_back(field);
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() > 4 && f[4] == path && dash + 1 < f.end()) found = *(dash + 1);
  }
  return found;
}

TEST_F(ImageStoreTest, ManyLayersExceedingOnePageOfOptionsMount) {
  std::string path = make_image("oci", "--layers 120 --compress none --name many:1");
  ASSERT_EQ(barge("import " + path).status, 0);
  // lowerdir+ (new mount API), then mount(2) as on kernels before 6.8: 123 lowers of ~110
  // characters need the short links there.
  for (std::string env : {"", "BARGE_OVERLAY_MOUNT2=1 "}) {
    std::string mnt = dir_ + "/mnt";
    Result r =
        sh(env + BARGE_BINARY + " --debug image --storage " + store_ + " mount many:1 " + mnt);
    ASSERT_EQ(r.status, 0) << env << r.out;
    EXPECT_EQ(r.out.find("overlayfs cannot be used"), std::string::npos) << env << r.out;
    EXPECT_EQ(fstype_at(mnt), "overlay") << env;
    if (!env.empty()) {
      EXPECT_NE(r.out.find("short links"), std::string::npos) << r.out;
    }
    EXPECT_EQ(slurp(mnt + "/extra/layer-000"), "layer 0\n") << env;
    EXPECT_EQ(slurp(mnt + "/extra/layer-119"), "layer 119\n") << env;
    EXPECT_EQ(slurp(mnt + "/data/a"), "file a, changed\n") << env;
    EXPECT_FALSE(std::ifstream(mnt + "/data/b").good()) << env;
    EXPECT_EQ(barge("unmount " + mnt).status, 0);
    EXPECT_TRUE(list_dir(store_ + "/mounts").empty());
  }
}

TEST_F(ImageStoreTest, RemoveAndPruneFreeExactlyUnusedContent) {
  std::string one = make_image("one", "--name p:gzip");
  std::string two = make_image("two", "--compress zstd --layers 1 --name p:zstd");
  ASSERT_EQ(barge("import " + one).status, 0);
  ASSERT_EQ(barge("import " + two).status, 0);
  EXPECT_EQ(layer_count(), 4u);
  ASSERT_EQ(barge("rm p:zstd").status, 0);
  EXPECT_EQ(layer_count(), 3u) << "layers shared with p:gzip must stay";
  ASSERT_EQ(barge("mount p:gzip " + dir_ + "/mnt").status, 0);
  EXPECT_EQ(barge("unmount " + dir_ + "/mnt").status, 0);
  Result r = barge("rm p:gzip");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(layer_count(), 0u);
  EXPECT_TRUE(list_dir(store_ + "/blobs/sha256").empty());
  EXPECT_NE(barge("inspect p:gzip").status, 0);
}

TEST_F(ImageStoreTest, BundleRunsWithBargeRun) {
  std::string path = make_image("oci", "--user app --name run:1");
  ASSERT_EQ(barge("import " + path).status, 0);
  std::string bundle = dir_ + "/bundle";
  Result b = barge("bundle run:1 " + bundle);
  ASSERT_EQ(b.status, 0) << b.out;
  auto config = nlohmann::json::parse(slurp(bundle + "/config.json"));
  EXPECT_EQ(config["process"]["user"]["uid"], 1000);
  EXPECT_EQ(config["process"]["user"]["gid"], 1000);
  EXPECT_EQ(config["process"]["user"]["additionalGids"], nlohmann::json::array({2000}));
  EXPECT_EQ(config["process"]["cwd"], "/data");
  EXPECT_EQ(config["process"]["terminal"], false);
  EXPECT_EQ(config["process"]["args"],
            nlohmann::json::array({"/bin/sh", "-c", "echo hello-from-image; id -u; pwd"}));
  auto env = config["process"]["env"];
  EXPECT_NE(std::find(env.begin(), env.end(), "FOO=bar"), env.end()) << env;
  EXPECT_NE(std::find(env.begin(), env.end(), "HOME=/home/app"), env.end()) << env;
  EXPECT_EQ(config["annotations"]["org.example.test"], "yes");
  EXPECT_EQ(config["annotations"]["org.opencontainers.image.exposedPorts"], "80/tcp");
  std::string id = "img-" + std::to_string(::getpid());
  Result run =
      sh(std::string(BARGE_BINARY) + " --root " + dir_ + "/state run -b " + bundle + " " + id);
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_NE(run.out.find("hello-from-image\n1000\n/data"), std::string::npos) << run.out;
  // run deleted the container, and with it the image rootfs and its writable layer.
  EXPECT_FALSE(mounted_under(dir_));
  EXPECT_TRUE(list_dir(store_ + "/mounts").empty());
  Result again = barge("unmount " + bundle);
  EXPECT_NE(again.status, 0);
  EXPECT_NE(again.out.find("no image is mounted"), std::string::npos) << again.out;
}

TEST_F(ImageStoreTest, DeleteReleasesTheImageRootfsAndUnmountStillWorksBefore) {
  std::string path = make_image("oci", "--name del:1");
  ASSERT_EQ(barge("import " + path).status, 0);
  std::string bundle = dir_ + "/bundle";
  ASSERT_EQ(barge("bundle del:1 " + bundle).status, 0);
  auto config = nlohmann::json::parse(slurp(bundle + "/config.json"));
  EXPECT_EQ(config["annotations"]["dev.barge.image.storage"], store_);
  std::string root = std::string(BARGE_BINARY) + " --root " + dir_ + "/state ";
  std::string id = "imgdel-" + std::to_string(::getpid());
  // The container's stdio must not be our pipe: it would keep sh() waiting.
  std::string create =
      root + "create -b " + bundle + " " + id + " </dev/null >" + dir_ + "/create.log 2>&1";
  ASSERT_EQ(sh(create).status, 0) << slurp(dir_ + "/create.log");
  EXPECT_TRUE(mounted_under(bundle + "/rootfs"));
  EXPECT_EQ(list_dir(store_ + "/mounts").size(), 1u);
  Result del = sh(root + "delete -f " + id);
  EXPECT_EQ(del.status, 0) << del.out;
  EXPECT_FALSE(mounted_under(dir_));
  EXPECT_TRUE(list_dir(store_ + "/mounts").empty());

  // Unmounted by hand first: delete has nothing left to do and succeeds.
  ASSERT_EQ(barge("bundle del:1 " + bundle).status, 0);
  ASSERT_EQ(sh(create).status, 0) << slurp(dir_ + "/create.log");
  EXPECT_EQ(sh(root + "kill " + id + " KILL").status, 0);
  EXPECT_EQ(barge("unmount " + bundle).status, 0);
  del = sh(root + "delete -f " + id);
  EXPECT_EQ(del.status, 0) << del.out;
  EXPECT_TRUE(list_dir(store_ + "/mounts").empty());
  auto state = list_dir(dir_ + "/state");
  std::erase(state, "@seccomp-cache");  // shared by containers, not theirs
  EXPECT_TRUE(state.empty());
}

TEST_F(ImageStoreTest, FailedBundleOrMountLeavesNothing) {
  std::string path = make_image("oci", "--name f:1");
  ASSERT_EQ(barge("import " + path).status, 0);
  Result r = barge("bundle missing:1 " + dir_ + "/b");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("missing:1: not found"), std::string::npos) << r.out;
  EXPECT_FALSE(std::ifstream(dir_ + "/b").good()) << "bundle dir left behind";
  ASSERT_EQ(barge("mount f:1 " + dir_ + "/m").status, 0);
  r = barge("mount f:1 " + dir_ + "/m");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("already mounted"), std::string::npos) << r.out;
  EXPECT_EQ(list_dir(store_ + "/mounts").size(), 1u);
  EXPECT_EQ(barge("unmount " + dir_ + "/m").status, 0);
  EXPECT_TRUE(list_dir(store_ + "/mounts").empty());
}

TEST_F(ImageStoreTest, ReferencesHaveOneSpelling) {
  std::string path = make_image("oci", "--name x");
  ASSERT_EQ(barge("import --name docker.io/library/busybox:latest " + path).status, 0);
  auto list = images();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["names"], nlohmann::json::array({"busybox:latest"}));
  std::string digest = list[0]["id"];
  std::vector<std::string> refs = {"busybox",
                                   "busybox:latest",
                                   "docker.io/library/busybox",
                                   "docker.io/library/busybox:latest",
                                   "busybox@" + digest,
                                   digest,
                                   digest.substr(7, 12)};
  for (const auto& ref : refs) {
    Result r = barge("inspect " + ref);
    EXPECT_EQ(r.status, 0) << ref << ": " << r.out;
  }
  EXPECT_NE(barge("inspect busybox:other").status, 0);
  ASSERT_EQ(barge("import --name busybox:1 " + path).status, 0);
  EXPECT_EQ(barge("rm docker.io/library/busybox").status, 0);
  list = images();
  ASSERT_EQ(list.size(), 1u) << "the image keeps its other name";
  EXPECT_EQ(list[0]["names"], nlohmann::json::array({"busybox:1"}));
}

TEST_F(ImageStoreTest, ConcurrentImportsOfOneImageAreSafe) {
  std::string path = make_image("oci.tar", "--tar --name con:1");
  std::string cmd = std::string(BARGE_BINARY) + " image --storage " + store_ + " import " + path;
  Result r = sh("(" + cmd + " & " + cmd + " & " + cmd + " & wait) && " + cmd);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(images().size(), 1u);
  EXPECT_EQ(layer_count(), 3u);
  EXPECT_TRUE(list_dir(store_ + "/tmp").empty());
}

// rm of one image while another sharing its layers is being imported: whatever the order, the
// new image ends complete (its layers and blobs present) and the removed one's own layer goes.
TEST_F(ImageStoreTest, RemoveDuringAnImportOfAnImageSharingLayers) {
  std::string one = make_image("one", "--layers 1 --name r:one");
  std::string two = make_image("two.tar", "--tar --compress zstd --layers 2 --name r:two");
  std::string bin = std::string(BARGE_BINARY) + " image --storage " + store_;
  for (int round = 0; round < 3; ++round) {
    ASSERT_EQ(barge("import " + one).status, 0);
    Result r =
        sh("(" + bin + " import " + two + " & " + bin + " rm r:one & " + bin + " prune & wait)");
    EXPECT_EQ(r.status, 0) << r.out;
    auto list = images();
    ASSERT_EQ(list.size(), 1u) << round;
    EXPECT_EQ(list[0]["names"], nlohmann::json::array({"r:two"}));
    // r:two's five layers (r:one's four are among them: zstd blobs differ, diff_ids do not).
    EXPECT_EQ(layer_count(), 5u) << round;
    ASSERT_EQ(barge("mount r:two " + dir_ + "/mnt").status, 0);
    EXPECT_EQ(slurp(dir_ + "/mnt/extra/layer-001"), "layer 1\n");
    EXPECT_EQ(barge("unmount " + dir_ + "/mnt").status, 0);
    ASSERT_EQ(barge("rm r:two").status, 0);
    expect_store_empty(store_);
  }
}

}  // namespace
