// Pure pieces of the image store: references, platforms, users, digests.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "image/bundle_internal.hpp"
#include "image/digest.hpp"
#include "image/import_internal.hpp"

namespace barge::image {
namespace {

constexpr std::string_view kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1000:app:/home/app:/bin/sh\n";
constexpr std::string_view kGroup = "root:x:0:\napp:x:1000:\nextra:x:2000:other,app\nwheel:x:10:\n";

TEST(ImageConfigTest, ResolvesUsersLikeDocker) {
  auto root = resolve_user("", kPasswd, kGroup);
  EXPECT_EQ(root.uid, 0u);
  EXPECT_EQ(root.home, "/root");
  auto app = resolve_user("app", kPasswd, kGroup);
  EXPECT_EQ(app.uid, 1000u);
  EXPECT_EQ(app.gid, 1000u);
  EXPECT_EQ(app.additional_gids, std::vector<uint32_t>{2000});
  EXPECT_EQ(resolve_user("1000", kPasswd, kGroup).home, "/home/app");
  EXPECT_EQ(resolve_user("app:wheel", kPasswd, kGroup).gid, 10u);
  EXPECT_EQ(resolve_user("4242:4343", kPasswd, kGroup).uid, 4242u);
  EXPECT_EQ(resolve_user("4242:4343", kPasswd, kGroup).gid, 4343u);
  EXPECT_THROW(resolve_user("nobody-here", kPasswd, kGroup), Error);
  EXPECT_THROW(resolve_user("app:nogroup", kPasswd, kGroup), Error);
  EXPECT_THROW(resolve_user("a:b:c", kPasswd, kGroup), Error);
}

TEST(ImageConfigTest, NormalizesNames) {
  EXPECT_EQ(normalize_name("busybox"), "busybox:latest");
  EXPECT_EQ(normalize_name("busybox:1.36"), "busybox:1.36");
  EXPECT_EQ(normalize_name("localhost:5000/x"), "localhost:5000/x:latest");
  EXPECT_THROW(normalize_name(""), Error);
  EXPECT_THROW(normalize_name("bad name"), Error);
  EXPECT_THROW(normalize_name("x@sha256:1234"), Error);
}

TEST(ImageConfigTest, DockerHubNamesHaveOneSpelling) {
  EXPECT_EQ(normalize_name("docker.io/library/busybox:latest"), "busybox:latest");
  EXPECT_EQ(normalize_name("docker.io/library/busybox"), "busybox:latest");
  EXPECT_EQ(normalize_name("index.docker.io/library/busybox:1.36"), "busybox:1.36");
  EXPECT_EQ(normalize_name("library/busybox"), "busybox:latest");
  EXPECT_EQ(normalize_name("docker.io/someone/tool"), "someone/tool:latest");
  EXPECT_EQ(normalize_name("quay.io/library/busybox"), "quay.io/library/busybox:latest");
  EXPECT_EQ(normalize_name("library/a/b"), "library/a/b:latest");
}

TEST(ImageConfigTest, DigestReferencesKeepTheirDigestAndGetNoTag) {
  const std::string digest = "sha256:" + std::string(64, 'a');
  EXPECT_EQ(normalize_name("busybox@" + digest), "busybox@" + digest);
  EXPECT_EQ(normalize_name("docker.io/library/busybox@" + digest), "busybox@" + digest);
  EXPECT_EQ(normalize_name("busybox:1.36@" + digest), "busybox:1.36@" + digest);
  EXPECT_EQ(normalize_name("localhost:5000/x@" + digest), "localhost:5000/x@" + digest);
  EXPECT_THROW(normalize_name("busybox:@" + digest), Error);
  EXPECT_THROW(normalize_name("busybox:"), Error);
  EXPECT_THROW(normalize_name("/busybox"), Error);
  EXPECT_THROW(normalize_name("a//b"), Error);
  EXPECT_THROW(normalize_name("@" + digest), Error);
}

TEST(ImageConfigTest, MatchesPlatforms) {
  EXPECT_TRUE(platform_matches("linux/amd64", "linux", "amd64", ""));
  EXPECT_FALSE(platform_matches("linux/amd64", "linux", "arm64", ""));
  EXPECT_TRUE(platform_matches("linux/arm/v7", "linux", "arm", "v7"));
  EXPECT_FALSE(platform_matches("linux/arm/v7", "linux", "arm", "v6"));
  EXPECT_FALSE(platform_matches("garbage", "linux", "amd64", ""));
}

TEST(ImageConfigTest, Digests) {
  EXPECT_EQ(sha256_of(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_TRUE(is_valid_digest(sha256_of("x")));
  EXPECT_FALSE(is_valid_digest("sha256:ABC"));
  EXPECT_FALSE(is_valid_digest("sha512:" + std::string(64, 'a')));
  EXPECT_THROW(digest_hex("sha256:../../etc"), Error);
}

}  // namespace
}  // namespace barge::image
