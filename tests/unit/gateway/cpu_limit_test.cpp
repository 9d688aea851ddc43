#include "gateway/cpu_limit.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace sluice::gateway {
namespace {

// A file system of a few files: what /proc and /sys/fs/cgroup show a process in a container.
struct Files {
  std::map<std::string, std::string> files;
  ReadFile reader() const {
    return [this](const std::string& path) -> std::optional<std::string> {
      const auto it = files.find(path);
      if (it == files.end()) return std::nullopt;
      return it->second;
    };
  }
};

constexpr const char* kV2Mount =
    "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

// cgroup v1 as Docker shows it without a cgroup namespace: the container's group is the
// root of what is mounted.
constexpr const char* kV1Mounts =
    "700 699 0:63 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/l,upperdir=/u\n"
    "706 705 0:30 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime "
    "master:12 - cgroup cpu,cpuacct rw,cpu,cpuacct\n"
    "707 705 0:31 /docker/abc /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:13 "
    "- cgroup memory rw,memory\n";

TEST(CpuLimitTest, V2QuotaOfTheProcessGroup) {
  Files fs;
  fs.files["/proc/self/cgroup"] = "0::/kubepods/pod1/c1\n";
  fs.files["/proc/self/mountinfo"] = kV2Mount;
  fs.files["/sys/fs/cgroup/kubepods/pod1/c1/cpu.max"] = "150000 100000\n";
  fs.files["/sys/fs/cgroup/kubepods/pod1/cpu.max"] = "max 100000\n";
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit(fs.reader()).value_or(-1), 1.5);
}

TEST(CpuLimitTest, V2SmallestQuotaOnThePathUpwards) {
  Files fs;
  fs.files["/proc/self/cgroup"] = "0::/kubepods/pod1/c1\n";
  fs.files["/proc/self/mountinfo"] = kV2Mount;
  fs.files["/sys/fs/cgroup/kubepods/pod1/c1/cpu.max"] = "400000 100000\n";
  fs.files["/sys/fs/cgroup/kubepods/pod1/cpu.max"] = "200000 100000\n";
  fs.files["/sys/fs/cgroup/kubepods/cpu.max"] = "max 100000\n";
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit(fs.reader()).value_or(-1), 2.0);
}

TEST(CpuLimitTest, V2NamespacedContainerReadsTheMountPoint) {
  // With a cgroup namespace the container's own group is "/" and is what is mounted.
  Files fs;
  fs.files["/proc/self/cgroup"] = "0::/\n";
  fs.files["/proc/self/mountinfo"] = kV2Mount;
  fs.files["/sys/fs/cgroup/cpu.max"] = "50000 100000\n";
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit(fs.reader()).value_or(-1), 0.5);
}

TEST(CpuLimitTest, V2WithoutQuotaIsNoLimit) {
  Files fs;
  fs.files["/proc/self/cgroup"] = "0::/user.slice/session-1.scope\n";
  fs.files["/proc/self/mountinfo"] = kV2Mount;
  fs.files["/sys/fs/cgroup/user.slice/session-1.scope/cpu.max"] = "max 100000\n";
  fs.files["/sys/fs/cgroup/user.slice/cpu.max"] = "max 100000\n";
  EXPECT_FALSE(cgroup_cpu_limit(fs.reader()).has_value());
}

TEST(CpuLimitTest, V1ContainerWithDockerCpus) {
  Files fs;
  fs.files["/proc/self/cgroup"] =
      "12:memory:/docker/abc\n"
      "4:cpu,cpuacct:/docker/abc\n"
      "1:name=systemd:/docker/abc\n";
  fs.files["/proc/self/mountinfo"] = kV1Mounts;
  fs.files["/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"] = "300000\n";
  fs.files["/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"] = "100000\n";
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit(fs.reader()).value_or(-1), 3.0);
}

TEST(CpuLimitTest, V1UnlimitedQuotaIsNoLimit) {
  Files fs;
  fs.files["/proc/self/cgroup"] = "4:cpu,cpuacct:/docker/abc\n";
  fs.files["/proc/self/mountinfo"] = kV1Mounts;
  fs.files["/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"] = "-1\n";
  fs.files["/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"] = "100000\n";
  EXPECT_FALSE(cgroup_cpu_limit(fs.reader()).has_value());
}

TEST(CpuLimitTest, HybridSystemUsesTheV1CpuHierarchy) {
  Files fs;
  fs.files["/proc/self/cgroup"] = "4:cpu,cpuacct:/docker/abc\n0::/docker/abc\n";
  fs.files["/proc/self/mountinfo"] = std::string(kV1Mounts) +
                                     "708 705 0:32 / /sys/fs/cgroup/unified rw - cgroup2 "
                                     "cgroup2 rw\n";
  fs.files["/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"] = "100000\n";
  fs.files["/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"] = "100000\n";
  fs.files["/sys/fs/cgroup/unified/docker/abc/cpu.max"] = "800000 100000\n";
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit(fs.reader()).value_or(-1), 1.0);
}

TEST(CpuLimitTest, EscapedMountPointIsUnderstood) {
  Files fs;
  fs.files["/proc/self/cgroup"] = "0::/a\n";
  fs.files["/proc/self/mountinfo"] = "30 23 0:26 / /mnt/cg\\040two - cgroup2 cgroup2 rw\n";
  fs.files["/mnt/cg two/a/cpu.max"] = "250000 100000\n";
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit(fs.reader()).value_or(-1), 2.5);
}

TEST(CpuLimitTest, UnreadableOrMalformedFilesAreNoLimit) {
  Files none;
  EXPECT_FALSE(cgroup_cpu_limit(none.reader()).has_value());

  Files garbage;
  garbage.files["/proc/self/cgroup"] = "0::/a\n";
  garbage.files["/proc/self/mountinfo"] = kV2Mount;
  garbage.files["/sys/fs/cgroup/a/cpu.max"] = "lots 100000\n";
  EXPECT_FALSE(cgroup_cpu_limit(garbage.reader()).has_value());

  Files no_mount;
  no_mount.files["/proc/self/cgroup"] = "0::/a\n";
  no_mount.files["/proc/self/mountinfo"] = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n";
  EXPECT_FALSE(cgroup_cpu_limit(no_mount.reader()).has_value());
}

TEST(CpuLimitTest, ThreadsAreTheLimitRoundedUpWithinTheCpus) {
  EXPECT_EQ(threads_for(64, 2.0), 2u);
  EXPECT_EQ(threads_for(64, 1.5), 2u);
  EXPECT_EQ(threads_for(64, 0.25), 1u);
  EXPECT_EQ(threads_for(4, 16.0), 4u);
  EXPECT_EQ(threads_for(8, std::nullopt), 8u);
  EXPECT_EQ(threads_for(0, std::nullopt), 1u);
}

}  // namespace
}  // namespace sluice::gateway
