// How many cores the relay may use, for its thread counts' defaults: the
// CPU affinity (a container's cpuset), or fewer under its cgroup's CPU
// quota (docker --cpus, systemd CPUQuota=, a Kubernetes CPU limit).
#pragma once

#include <string>

namespace meshwire {

/// The cores this process may run on, lowered to its CPU quota; at least 1.
int UsableCores();

/// The CPU quota of the process whose /proc/self/cgroup and /sys/fs/cgroup
/// lie under `root` ("/" for this one), in cores rounded up; 0 without one.
/// cgroup v2: cpu.max ("QUOTA PERIOD", or "max PERIOD" for none); cgroup v1:
/// cpu.cfs_quota_us over cpu.cfs_period_us (-1 for none). The process's own
/// group is read first, then the hierarchy's root (a container sees its
/// own group there).
int CgroupQuotaCores(const std::string& root);

}  // namespace meshwire
