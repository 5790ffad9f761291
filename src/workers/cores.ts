// How many cores `auto` means: the ones this process may run on (os.availableParallelism(), which
// follows the CPU affinity), capped by the cgroup's CPU quota when there is one (a Kubernetes CPU
// limit), as nginx's `worker_processes auto` should be and ingress-nginx's is not on cgroup v2.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { cgroupCpuLimit } from './count.ts';

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export function availableCores(): number {
  const v2 = read('/sys/fs/cgroup/cpu.max');
  const quota = v2 === null ? read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') : null;
  const period = v2 === null ? read('/sys/fs/cgroup/cpu/cpu.cfs_period_us') : null;
  const limit = cgroupCpuLimit(v2, quota !== null && period !== null ? { quota, period } : null);
  const cores = availableParallelism();
  return limit === null ? cores : Math.max(1, Math.min(cores, limit));
}
