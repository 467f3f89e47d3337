// seccomp::compile: JSON-path errors, rule generation (checked on libseccomp's PFC export), the
// ENOSYS prologue and the default profile. Loading is tested in tests/integration.
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/seccomp_cache.hpp"
#include "runtime/spec.hpp"
#include "tests/unit/log_capture.hpp"

namespace seccomp = barge::seccomp;
namespace spec = barge::spec;
using Json = nlohmann::json;

namespace {

spec::Seccomp parse_seccomp(const Json& seccomp_json) {
  Json config = {{"ociVersion", "1.2.0"},
                 {"root", {{"path", "rootfs"}}},
                 {"linux", {{"seccomp", seccomp_json}}}};
  return *spec::parse(config.dump()).linux->seccomp;
}

Json allow_default(Json syscalls) {
  return {{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", std::move(syscalls)}};
}

std::string compile_error(const Json& seccomp_json) {
  try {
    seccomp::compile(parse_seccomp(seccomp_json));
  } catch (const barge::Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string pfc(const Json& seccomp_json) {
  return seccomp::compile(parse_seccomp(seccomp_json)).export_pfc();
}

using barge::testing::LogCapture;

}  // namespace

TEST(SeccompCompile, UnknownDefaultActionNamesPath) {
  EXPECT_EQ(compile_error({{"defaultAction", "SCMP_ACT_FOO"}}),
            "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_FOO\"");
}

TEST(SeccompCompile, UnknownRuleActionNamesPath) {
  Json config = allow_default({{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}},
                               {{"names", {"rmdir"}}, {"action", "SCMP_ACT_FOO"}}});
  EXPECT_EQ(compile_error(config),
            "linux.seccomp.syscalls[1].action: unknown action \"SCMP_ACT_FOO\"");
}

TEST(SeccompCompile, NotifyCannotBeDefault) {
  EXPECT_NE(
      compile_error({{"defaultAction", "SCMP_ACT_NOTIFY"}}).find("linux.seccomp.defaultAction"),
      std::string::npos);
}

TEST(SeccompCompile, NotifyOnWriteRefused) {
  Json config = allow_default({{{"names", {"getpid", "write"}}, {"action", "SCMP_ACT_NOTIFY"}}});
  config["listenerPath"] = "/run/agent.sock";
  EXPECT_EQ(compile_error(config),
            "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for \"write\"");
}

TEST(SeccompCompile, ArgumentIndexAndOperatorNamePaths) {
  Json bad_index = allow_default({{{"names", {"kill"}},
                                   {"action", "SCMP_ACT_ERRNO"},
                                   {"args",
                                    {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_EQ"}},
                                     {{"index", 6}, {"value", 1}, {"op", "SCMP_CMP_EQ"}}}}}});
  EXPECT_EQ(compile_error(bad_index), "linux.seccomp.syscalls[0].args[1].index: 6 is not below 6");
  Json bad_op = allow_default({{{"names", {"kill"}},
                                {"action", "SCMP_ACT_ERRNO"},
                                {"args", {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_XX"}}}}}});
  EXPECT_EQ(compile_error(bad_op),
            "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_XX\"");
}

TEST(SeccompCompile, ArchitectureErrorsNamePath) {
  Json unknown = {{"defaultAction", "SCMP_ACT_ALLOW"},
                  {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"}}};
  EXPECT_EQ(
      compile_error(unknown),
      "linux.seccomp.architectures[1]: architecture \"SCMP_ARCH_VAX\" is not supported by "
      "libseccomp " +
          [] {
            const scmp_version* v = seccomp_version();
            return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                   std::to_string(v->micro);
          }());
  Json no_prefix = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"architectures", {"x86_64"}}};
  EXPECT_EQ(compile_error(no_prefix),
            "linux.seccomp.architectures[0]: unknown architecture \"x86_64\"");
}

TEST(SeccompCompile, ArchitecturesIncludingNativeAreAccepted) {
  Json config = {{"defaultAction", "SCMP_ACT_ALLOW"},
                 {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
                 {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}}}};
  std::string text = pfc(config);
  EXPECT_NE(text.find("filter for arch x86_64"), std::string::npos) << text;
  EXPECT_NE(text.find("filter for arch x86 "), std::string::npos) << text;
  EXPECT_NE(text.find("filter for arch x32"), std::string::npos) << text;
}

TEST(SeccompCompile, FlagsMapToKernelFlags) {
  Json config = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"flags",
       {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}}};
  auto filter = seccomp::compile(parse_seccomp(config));
  EXPECT_EQ(filter.flags(), SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);
  EXPECT_FALSE(filter.has_listener());
  Json unknown = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"flags", {"SECCOMP_FILTER_FLAG_FOO"}}};
  EXPECT_EQ(compile_error(unknown),
            "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_FOO\"");
}

TEST(SeccompCompile, NotifyAddsListenerAndWaitKillable) {
  Json config = allow_default({{{"names", {"getppid"}}, {"action", "SCMP_ACT_NOTIFY"}}});
  config["listenerPath"] = "/run/agent.sock";
  config["flags"] = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  auto filter = seccomp::compile(parse_seccomp(config));
  EXPECT_TRUE(filter.has_listener());
  EXPECT_TRUE(seccomp::needs_listener(parse_seccomp(config)));
  // Kernel 5.19+ knows WAIT_KILLABLE_RECV; this host runs 6.x.
  EXPECT_EQ(filter.flags(), SECCOMP_FILTER_FLAG_NEW_LISTENER | (1U << 5));
}

TEST(SeccompCompile, ErrnoRetOutOfRange) {
  Json config = {{"defaultAction", "SCMP_ACT_ERRNO"}, {"defaultErrnoRet", 70000}};
  EXPECT_EQ(compile_error(config), "linux.seccomp.defaultErrnoRet: 70000 is out of range");
}

TEST(SeccompCompile, UnknownSyscallWarnsAndIsSkipped) {
  LogCapture log;
  Json config = allow_default(
      {{{"names", {"mkdir", "no_such_syscall"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}});
  std::string text = pfc(config);
  EXPECT_NE(text.find("if ($syscall == 83)\n    action ERRNO(42);"), std::string::npos) << text;
  std::string warnings = log.text();
  EXPECT_NE(warnings.find("level=warning"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("linux.seccomp.syscalls[0].names[1]: unknown syscall "),
            std::string::npos)
      << warnings;
}

TEST(SeccompCompile, PfcShowsActionsAndErrno) {
  Json config = {
      {"defaultAction", "SCMP_ACT_ERRNO"},
      {"defaultErrnoRet", 1},
      {"syscalls",
       {{{"names", {"read", "write"}}, {"action", "SCMP_ACT_ALLOW"}},
        {{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}},
        {{"names", {"rmdir"}}, {"action", "SCMP_ACT_ERRNO"}},  // EPERM: same as the default
        {{"names", {"getppid"}}, {"action", "SCMP_ACT_KILL_PROCESS"}},
        {{"names", {"uname"}}, {"action", "SCMP_ACT_KILL"}},
        {{"names", {"getuid"}}, {"action", "SCMP_ACT_TRAP"}},
        {{"names", {"getgid"}}, {"action", "SCMP_ACT_TRACE"}, {"errnoRet", 7}},
        {{"names", {"getpid"}}, {"action", "SCMP_ACT_LOG"}}}}};
  std::string text = pfc(config);
  for (const char* expected :
       {"filter for syscall \"read\"", "filter for syscall \"write\"", "action ERRNO(42);",
        "action KILL_PROCESS;", "action KILL;", "action TRAP;", "action TRACE(7);", "action LOG;",
        "action ALLOW;",
        // clone3 is not in this deny-by-default profile: it must get ENOSYS (38)
        "filter for syscall \"clone3\" (435)", "action ERRNO(38);",
        "# default action\n  action ERRNO(1);"})
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  EXPECT_EQ(text.find("rmdir"), std::string::npos) << text;
}

TEST(SeccompCompile, ErrnoWithoutErrnoRetIsEperm) {
  std::string text = pfc(allow_default({{{"names", {"rmdir"}}, {"action", "SCMP_ACT_ERRNO"}}}));
  EXPECT_NE(text.find("if ($syscall == 84)\n    action ERRNO(1);"), std::string::npos) << text;
}

TEST(SeccompCompile, AllowDefaultAddsNoClone3Rule) {
  std::string text = pfc(allow_default({{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}}));
  EXPECT_EQ(text.find("clone3"), std::string::npos) << text;
}

TEST(SeccompCompile, RuleRepeatingDefaultActionIsSkipped) {
  std::string text = pfc(allow_default({{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ALLOW"}}}));
  EXPECT_EQ(text.find("mkdir"), std::string::npos) << text;
}

TEST(SeccompCompile, ConditionsOnDifferentArgumentsAreAnded) {
  std::string text =
      pfc(allow_default({{{"names", {"kill"}},
                          {"action", "SCMP_ACT_ERRNO"},
                          {"args",
                           {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_EQ"}},
                            {{"index", 1}, {"value", 9}, {"op", "SCMP_CMP_EQ"}}}}}}));
  // One rule: a1 is checked inside the a0 branch.
  EXPECT_NE(
      text.find(
          "      if ($a0.lo32 == 1)\n        if ($a1.hi32 == 0)\n          if ($a1.lo32 == 9)"),
      std::string::npos)
      << text;
}

TEST(SeccompCompile, ConditionsOnTheSameArgumentBecomeSeparateRules) {
  std::string text =
      pfc(allow_default({{{"names", {"kill"}},
                          {"action", "SCMP_ACT_ERRNO"},
                          {"args",
                           {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_EQ"}},
                            {{"index", 0}, {"value", 2}, {"op", "SCMP_CMP_EQ"}}}}}}));
  // runc's rule: an OR of the two conditions, not an impossible AND.
  EXPECT_NE(text.find("if ($a0.lo32 == 1)\n        action ERRNO(1);"), std::string::npos) << text;
  EXPECT_NE(text.find("if ($a0.lo32 == 2)\n        action ERRNO(1);"), std::string::npos) << text;
}

TEST(SeccompCompile, OperatorsMapToLibseccompComparisons) {
  struct Case {
    const char* op;
    uint64_t value, value_two;
    const char* expected;
  };
  // libseccomp prints "not" forms as the positive test with the action in the else branch.
  for (const Case& c :
       {Case{"SCMP_CMP_EQ", 5, 0, "if ($a0.lo32 == 5)\n        action ERRNO(1);"},
        Case{"SCMP_CMP_NE", 5, 0, "if ($a0.lo32 == 5)\n      else\n        action ERRNO(1);"},
        Case{"SCMP_CMP_GT", 5, 0, "if ($a0.lo32 > 5)\n          action ERRNO(1);"},
        Case{"SCMP_CMP_GE", 5, 0, "if ($a0.lo32 >= 5)\n          action ERRNO(1);"},
        Case{"SCMP_CMP_LT", 5, 0, "if ($a0.lo32 >= 5)\n        else\n          action ERRNO(1);"},
        Case{"SCMP_CMP_LE", 5, 0, "if ($a0.lo32 > 5)\n        else\n          action ERRNO(1);"},
        Case{"SCMP_CMP_MASKED_EQ", 0xf0, 0x30,
             "if ($a0.lo32 & 0x000000f0 == 48)\n        action ERRNO(1);"}}) {
    std::string text = pfc(allow_default(
        {{{"names", {"getppid"}},
          {"action", "SCMP_ACT_ERRNO"},
          {"args",
           {{{"index", 0}, {"value", c.value}, {"valueTwo", c.value_two}, {"op", c.op}}}}}}));
    EXPECT_NE(text.find(c.expected), std::string::npos) << c.op << "\n" << text;
  }
}

TEST(SeccompCompile, DenyByDefaultGetsEnosysPrologue) {
  Json config = {{"defaultAction", "SCMP_ACT_ERRNO"},
                 {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}},
                 {"syscalls", {{{"names", {"read", "exit_group"}}, {"action", "SCMP_ACT_ALLOW"}}}}};
  auto filter = seccomp::compile(parse_seccomp(config));
  const auto& p = filter.program();
  ASSERT_GT(p.size(), 8u);
  EXPECT_EQ(p[0].code, BPF_LD | BPF_W | BPF_ABS);
  EXPECT_EQ(p[0].k, offsetof(seccomp_data, arch));
  bool returns_enosys = false, compares_x86_64_limit = false;
  for (const auto& insn : p) {
    if (insn.code == (BPF_RET | BPF_K) && insn.k == (SECCOMP_RET_ERRNO | ENOSYS))
      returns_enosys = true;
    // exit_group (231 on x86_64) is the highest syscall the profile names.
    if (insn.code == (BPF_JMP | BPF_JGT | BPF_K) && insn.k == 231) compares_x86_64_limit = true;
  }
  EXPECT_TRUE(returns_enosys);
  EXPECT_TRUE(compares_x86_64_limit);
}

TEST(SeccompCompile, AllowByDefaultHasNoPrologue) {
  auto filter = seccomp::compile(
      parse_seccomp(allow_default({{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}}})));
  for (const auto& insn : filter.program())
    EXPECT_FALSE(insn.code == (BPF_RET | BPF_K) && insn.k == (SECCOMP_RET_ERRNO | ENOSYS));
}

TEST(SeccompDefaultProfile, IsInTheSpecConfigAndCompilesWithoutWarnings) {
  for (bool rootless : {false, true}) {
    spec::Spec s = spec::parse(spec::default_config_json(rootless));
    ASSERT_TRUE(s.linux && s.linux->seccomp) << rootless;
    EXPECT_NO_THROW(spec::validate(s));
    const spec::Seccomp& profile = *s.linux->seccomp;
    EXPECT_EQ(profile.default_action, "SCMP_ACT_ERRNO");
    EXPECT_EQ(profile.default_errno_ret.value_or(0), 1u);
    LogCapture log;
    auto filter = seccomp::compile(profile);
    EXPECT_EQ(log.text(), "");
    EXPECT_LE(filter.program().size(), static_cast<size_t>(BPF_MAXINSNS));
    EXPECT_FALSE(filter.has_listener());
  }
}

TEST(SeccompDefaultProfile, DeniesTheDangerousSyscalls) {
  spec::Spec s = spec::parse(spec::default_config_json(false));
  std::string text = seccomp::compile(*s.linux->seccomp).export_pfc();
  for (const char* denied :
       {"\"mount\"", "\"umount2\"", "\"unshare\"", "\"setns\"", "\"kexec_load\"", "\"init_module\"",
        "\"finit_module\"", "\"keyctl\"", "\"add_key\"", "\"bpf\"", "\"pivot_root\"", "\"reboot\"",
        "\"open_by_handle_at\""})
    EXPECT_EQ(text.find(std::string("filter for syscall ") + denied), std::string::npos) << denied;
  for (const char* allowed :
       {"\"read\"", "\"execve\"", "\"clone\"", "\"personality\"", "\"socket\""})
    EXPECT_NE(text.find(std::string("filter for syscall ") + allowed), std::string::npos)
        << allowed;
#if defined(__x86_64__)
  EXPECT_EQ(s.linux->seccomp->architectures,
            (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
#endif
}

// runtime/seccomp-default.json marks machine-specific rules with includes/excludes: only the
// native machine's rules reach the spec, without those keys (they are not runtime-spec fields).
TEST(SeccompDefaultProfile, DataFileRulesAreFilteredForThisMachine) {
  Json profile = Json::parse(seccomp::default_profile_json());
  std::vector<std::string> names;
  unsigned clone_rules = 0;
  for (const Json& rule : profile["syscalls"]) {
    EXPECT_FALSE(rule.contains("includes") || rule.contains("excludes")) << rule.dump();
    for (const Json& name : rule["names"]) names.push_back(name.get<std::string>());
    if (rule["names"][0] == "clone") {
      ++clone_rules;
#if !defined(__s390x__) && !defined(__s390__)
      EXPECT_EQ(rule["args"][0]["index"], 0) << "s390's clone rule reached another machine";
#endif
    }
  }
  EXPECT_EQ(clone_rules, 1u);
  auto has = [&](const char* name) { return std::ranges::find(names, name) != names.end(); };
#if defined(__x86_64__)
  EXPECT_TRUE(has("arch_prctl"));
  EXPECT_FALSE(has("cacheflush"));  // arm only
#endif
  EXPECT_TRUE(has("read"));
}

// ---- compile_cached --------------------------------------------------------------------------

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char name[] = "/tmp/barge-seccomp-cache-XXXXXX";
    path = ::mkdtemp(name);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
  std::string cache() const { return path + "/cache"; }
};

bool same_program(const seccomp::Filter& a, const seccomp::Filter& b) {
  return a.program().size() == b.program().size() &&
         std::memcmp(a.program().data(), b.program().data(),
                     a.program().size() * sizeof(sock_filter)) == 0;
}

}  // namespace

TEST(SeccompCache, HitGivesTheProgramCompileGivesAndReplaysWarnings) {
  TempDir dir;
  Json rules = allow_default(
      {{{"names", {"mkdir", "no_such_syscall"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}});
  rules["flags"] = {"SECCOMP_FILTER_FLAG_LOG"};
  spec::Seccomp config = parse_seccomp(rules);
  seccomp::Filter fresh = seccomp::compile(config);

  seccomp::Filter miss = seccomp::compile_cached(config, dir.cache());
  EXPECT_NO_THROW(miss.export_pfc());  // compiled by libseccomp
  std::string key = seccomp::cache::key(config);
  ASSERT_FALSE(key.empty()) << "barge is linked without a build id";
  ASSERT_TRUE(barge::path_exists(dir.cache() + "/" + key));

  LogCapture log;
  seccomp::Filter hit = seccomp::compile_cached(config, dir.cache());
  EXPECT_THROW(hit.export_pfc(), barge::Error);  // no libseccomp context: it came from the cache
  EXPECT_TRUE(same_program(hit, fresh));
  EXPECT_EQ(hit.flags(), fresh.flags());
  EXPECT_EQ(hit.rule_warnings(), fresh.rule_warnings());
  EXPECT_NE(log.text().find("linux.seccomp.syscalls[0].names[1]: unknown syscall "),
            std::string::npos)
      << log.text();
}

TEST(SeccompCache, KeyChangesWithEveryRuleField) {
  Json base = allow_default({{{"names", {"mkdir"}},
                              {"action", "SCMP_ACT_ERRNO"},
                              {"errnoRet", 42},
                              {"args", {{{"index", 1}, {"value", 2}, {"op", "SCMP_CMP_EQ"}}}}}});
  std::string key = seccomp::cache::key(parse_seccomp(base));
  std::vector<Json> variants(7, base);
  variants[0]["defaultAction"] = "SCMP_ACT_LOG";
  variants[1]["syscalls"][0]["names"] = {"rmdir"};
  variants[2]["syscalls"][0]["errnoRet"] = 43;
  variants[3]["syscalls"][0]["action"] = "SCMP_ACT_KILL";
  variants[4]["syscalls"][0]["args"][0]["value"] = 3;
  variants[5]["syscalls"][0]["args"][0]["op"] = "SCMP_CMP_NE";
  variants[6]["architectures"] = {"SCMP_ARCH_X86_64"};
  for (size_t i = 0; i < variants.size(); ++i)
    EXPECT_NE(seccomp::cache::key(parse_seccomp(variants[i])), key) << i;
  EXPECT_EQ(seccomp::cache::key(parse_seccomp(base)), key);
}

TEST(SeccompCache, MalformedEntriesAreIgnoredAndRecompiled) {
  seccomp::cache::Entry entry{{{BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW}}, {"a warning"}};
  std::string data = seccomp::cache::encode(entry);
  auto decoded = seccomp::cache::decode(data);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->warnings, entry.warnings);
  ASSERT_EQ(decoded->program.size(), 1u);
  EXPECT_EQ(decoded->program[0].k, static_cast<uint32_t>(SECCOMP_RET_ALLOW));
  EXPECT_FALSE(seccomp::cache::decode(data.substr(0, data.size() - 1)));  // truncated
  EXPECT_FALSE(seccomp::cache::decode(data + "x"));                       // trailing bytes
  EXPECT_FALSE(seccomp::cache::decode("not a cache file"));

  TempDir dir;
  spec::Seccomp config = parse_seccomp(
      allow_default({{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}}));
  barge::make_dirs(dir.cache());
  barge::write_file(dir.cache() + "/" + seccomp::cache::key(config), data.substr(0, 30));
  seccomp::Filter filter = seccomp::compile_cached(config, dir.cache());
  EXPECT_TRUE(same_program(filter, seccomp::compile(config)));
}

TEST(SeccompCache, EntriesOthersCouldHaveWrittenAreNotUsed) {
  TempDir dir;
  spec::Seccomp config = parse_seccomp(
      allow_default({{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}}));
  seccomp::compile_cached(config, dir.cache());  // stores the entry
  std::string entry = dir.cache() + "/" + seccomp::cache::key(config);
  ASSERT_TRUE(barge::path_exists(entry));
  // A hit has no libseccomp context (export_pfc throws); a fresh compile has one.
  EXPECT_THROW(seccomp::compile_cached(config, dir.cache()).export_pfc(), barge::Error);

  ASSERT_EQ(::chmod(dir.cache().c_str(), 0777), 0);  // anyone could have planted it
  EXPECT_NO_THROW(seccomp::compile_cached(config, dir.cache()).export_pfc());
  ASSERT_EQ(::chmod(dir.cache().c_str(), 0700), 0);
  ASSERT_EQ(::chmod(entry.c_str(), 0666), 0);
  EXPECT_NO_THROW(seccomp::compile_cached(config, dir.cache()).export_pfc());
  ASSERT_EQ(::chmod(entry.c_str(), 0600), 0);
  EXPECT_THROW(seccomp::compile_cached(config, dir.cache()).export_pfc(), barge::Error);
}

TEST(SeccompCache, AnUnwritableCacheOnlyCostsTime) {
  spec::Seccomp config = parse_seccomp(
      allow_default({{{"names", {"mkdir"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}}));
  seccomp::Filter filter = seccomp::compile_cached(config, "/proc/no-such-dir/cache");
  EXPECT_TRUE(same_program(filter, seccomp::compile(config)));
}
