// How many CPUs' worth of time this process may use when a control group caps it: a
// container run with `--cpus 2` or a Kubernetes CPU limit sees every CPU of its host in its
// affinity mask, and an I/O thread per host CPU would only be throttled. The default
// `io_threads` takes the smaller of the two.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::gateway {

// Reads a whole file; nullopt when it does not exist or cannot be read.
using ReadFile = std::function<std::optional<std::string>(const std::string& path)>;

// The CPU limit, in CPUs (1.5 for a quota of 150 ms per 100 ms period), of the control group
// this process belongs to: the smallest quota on the path from its group up to the top of
// the mounted hierarchy, cgroup v1 (`cpu.cfs_quota_us` / `cpu.cfs_period_us`, the hierarchy
// with the `cpu` controller) or v2 (`cpu.max`). Reads /proc/self/cgroup and
// /proc/self/mountinfo to find the group's directory. nullopt when no quota applies or the
// files cannot be read or understood.
std::optional<double> cgroup_cpu_limit(const ReadFile& read);

// The same, reading the real files.
std::optional<double> cgroup_cpu_limit();

// Threads to run on `cpus` usable CPUs under `limit`: the limit rounded up, never more than
// the CPUs, at least 1.
std::size_t threads_for(std::size_t cpus, std::optional<double> limit);

}  // namespace sluice::gateway
