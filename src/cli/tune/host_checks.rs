//! The host settings `sluice tune` checks, each with the value sluice wants and why.
//! Everything is read from /proc and /sys; nothing here writes.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::tune_setting::{format_cpu_list, parse_cpu_list, Finding, Rule};

/// Socket buffer ceiling for high bandwidth-delay paths (16 MiB).
const SOCKET_BUFFER_BYTES_MIN: u64 = 16 << 20;
/// Smallest memlock limit we consider enough for io_uring rings and registered buffers.
const MEMLOCK_BYTES_MIN: u64 = 512 << 20;

/// What the checks need to know about the broker that will run here.
pub struct HostPlan {
    pub data_dir: PathBuf,
    /// CPUs the shards run on; the rest take interrupts.
    pub broker_cpus: Vec<usize>,
    pub online_cpus: Vec<usize>,
    /// `net.core.busy_poll`/`busy_read` to set; `None` only reports them.
    pub busy_poll_us: Option<u64>,
}

impl HostPlan {
    fn irq_cpus(&self) -> Vec<usize> {
        self.online_cpus
            .iter()
            .copied()
            .filter(|c| !self.broker_cpus.contains(c))
            .collect()
    }
}

pub fn online_cpus() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|t| parse_cpu_list(&t))
        .unwrap_or_else(|| (0..crate::config::default_shard_count()).collect())
}

pub fn check_all(plan: &HostPlan) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(cpu_governor(plan));
    findings.extend(irq_affinity(plan));
    findings.extend(nic_queues(plan));
    findings.extend(block_device(plan));
    findings.extend(memory(plan));
    findings.extend(network_sysctls(plan));
    findings.push(memlock_limit());
    findings.push(Finding::file(
        "fs.aio-max-nr",
        "/proc/sys/fs/aio-max-nr",
        Rule::AtLeast(1_048_576),
        "room for asynchronous I/O contexts: the default 65536 runs out with many shards and \
         partitions (Redpanda and ScyllaDB ask for 1048576)",
    ));
    findings
}

fn sysctl(name: &str, rule: Rule, why: &str) -> Finding {
    let path = PathBuf::from("/proc/sys").join(name.replace('.', "/"));
    Finding::file(name, path, rule, why)
}

fn cpu_governor(plan: &HostPlan) -> Vec<Finding> {
    const WHY: &str = "shards poll and run flat out; frequency scaling adds wake-up latency and \
                       makes latency depend on load";
    let mut findings = Vec::new();
    for cpu in &plan.broker_cpus {
        let dir = PathBuf::from(format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq"));
        let available = std::fs::read_to_string(dir.join("scaling_available_governors"));
        match available {
            Ok(list) if list.split_whitespace().any(|g| g == "performance") => {
                findings.push(Finding::file(
                    format!("cpu{cpu} governor"),
                    dir.join("scaling_governor"),
                    Rule::Exactly("performance".to_owned()),
                    WHY,
                ));
            }
            Ok(list) => findings.push(Finding::unavailable(
                format!("cpu{cpu} governor"),
                WHY,
                format!("no performance governor offered ({})", list.trim()),
            )),
            Err(_) => {
                findings.push(Finding::unavailable(
                    "cpu governor",
                    WHY,
                    "no cpufreq here (a VM, or the firmware owns frequency)".to_owned(),
                ));
                break;
            }
        }
    }
    findings
}

/// `/proc/interrupts` action names that belong to the data disk and the NICs.
fn device_irq_tags(plan: &HostPlan) -> Vec<String> {
    let mut tags = Vec::new();
    let device_name = |link: PathBuf| {
        std::fs::canonicalize(link)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    };
    for nic in physical_nics() {
        tags.extend(device_name(PathBuf::from(format!(
            "/sys/class/net/{nic}/device"
        ))));
        tags.push(nic);
    }
    if let Some(disk) = data_disk(&plan.data_dir) {
        let name = disk
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        tags.extend(device_name(disk.join("device")));
        // nvme0n1's queues are named nvme0q0, nvme0q1, ...
        if let Some(controller) = name.strip_prefix("nvme").and_then(|r| r.split('n').next()) {
            tags.push(format!("nvme{controller}q"));
        }
        tags.push(name);
    }
    tags.retain(|t| !t.is_empty());
    tags
}

fn irq_matches(action: &str, tag: &str) -> bool {
    action.strip_prefix(tag).is_some_and(|rest| {
        // virtio1 must not match virtio10-req.0; nvme0q matches nvme0q3.
        tag.ends_with('q') || !rest.starts_with(|c: char| c.is_ascii_digit())
    })
}

fn irq_affinity(plan: &HostPlan) -> Vec<Finding> {
    const WHY: &str = "interrupts of the NIC and the data disk on a shard's core preempt its \
                       reactor; steer them to cores no shard runs on";
    let mut findings = Vec::new();
    if std::path::Path::new("/run/irqbalance.pid").exists() || process_running("irqbalance") {
        findings.push(Finding::advice(
            "irqbalance",
            Some("running".to_owned()),
            "irqbalance rewrites IRQ affinity and undoes what tune sets",
            "stop it, or set IRQBALANCE_BANNED_CPULIST to the shards' CPUs".to_owned(),
        ));
    }
    let irq_cpus = plan.irq_cpus();
    let tags = device_irq_tags(plan);
    let Ok(interrupts) = std::fs::read_to_string("/proc/interrupts") else {
        findings.push(Finding::unavailable(
            "irq affinity",
            WHY,
            "cannot read /proc/interrupts".to_owned(),
        ));
        return findings;
    };
    let mut device_irqs = Vec::new();
    for line in interrupts.lines() {
        let Some((irq, rest)) = line.trim_start().split_once(':') else {
            continue;
        };
        let Ok(irq) = irq.parse::<u32>() else {
            continue;
        };
        let action = rest.split_whitespace().last().unwrap_or("");
        if tags.iter().any(|t| irq_matches(action, t)) {
            device_irqs.push((irq, action.to_owned()));
        }
    }
    if device_irqs.is_empty() {
        findings.push(Finding::unavailable(
            "irq affinity",
            WHY,
            format!("no interrupts found for {tags:?}"),
        ));
        return findings;
    }
    if irq_cpus.is_empty() {
        findings.push(Finding::advice(
            "irq affinity",
            Some(format!("{} device IRQs", device_irqs.len())),
            WHY,
            format!(
                "every online CPU ({}) runs a shard, so IRQs cannot move off them; leave a core \
                 free with --cpus/--shards (e.g. --cpus 1-N) on hosts with enough cores",
                format_cpu_list(&plan.online_cpus)
            ),
        ));
        return findings;
    }
    for (irq, action) in device_irqs {
        findings.push(Finding::file(
            format!("irq {irq} ({action}) affinity"),
            format!("/proc/irq/{irq}/smp_affinity_list"),
            Rule::CpuList(irq_cpus.clone()),
            WHY,
        ));
    }
    findings
}

fn process_running(name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        std::fs::read_to_string(e.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
    })
}

/// Interfaces backed by a device (not lo, bridges, veths or ifbs).
fn physical_nics() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    let mut nics: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("device").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    nics.sort();
    nics
}

fn queue_count(nic: &str, prefix: &str) -> usize {
    std::fs::read_dir(format!("/sys/class/net/{nic}/queues")).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .count()
    })
}

fn cpu_mask(cpus: &[usize]) -> u128 {
    cpus.iter()
        .filter(|&&c| c < 128)
        .fold(0u128, |mask, &c| mask | (1u128 << c))
}

fn nic_queues(plan: &HostPlan) -> Vec<Finding> {
    let mut findings = Vec::new();
    for nic in physical_nics() {
        let (rx, tx) = (queue_count(&nic, "rx-"), queue_count(&nic, "tx-"));
        let shards = plan.broker_cpus.len();
        if rx >= shards {
            findings.push(Finding::ok(
                format!("{nic} RSS queues"),
                format!("{rx} rx, {tx} tx"),
                "one receive queue per shard spreads packet processing (RSS)",
            ));
        } else {
            findings.push(Finding::advice(
                format!("{nic} RSS queues"),
                Some(format!("{rx} rx, {tx} tx")),
                "one receive queue per shard spreads packet processing (RSS)",
                format!("raise with `ethtool -L {nic} combined {shards}` if the NIC allows"),
            ));
        }
        if rx == 1 && plan.online_cpus.len() > 1 {
            // One hardware queue: spread protocol processing in software (RPS) over the
            // shards' CPUs, keeping it off the core that takes the interrupt if there is one.
            let cpus = if plan.irq_cpus().is_empty() {
                &plan.online_cpus
            } else {
                &plan.broker_cpus
            };
            findings.push(Finding::file(
                format!("{nic} rx-0 RPS"),
                format!("/sys/class/net/{nic}/queues/rx-0/rps_cpus"),
                Rule::CpuMask(cpu_mask(cpus)),
                "a single-queue NIC otherwise processes every packet on the interrupt's core",
            ));
        }
        if tx > 1 {
            for queue in 0..tx {
                let cpus: Vec<usize> = plan
                    .online_cpus
                    .iter()
                    .copied()
                    .filter(|c| c % tx == queue)
                    .collect();
                findings.push(Finding::file(
                    format!("{nic} tx-{queue} XPS"),
                    format!("/sys/class/net/{nic}/queues/tx-{queue}/xps_cpus"),
                    Rule::CpuMask(cpu_mask(&cpus)),
                    "each core transmits on its own queue (XPS): no lock contention on send",
                ));
            }
        }
    }
    findings
}

/// The whole-disk sysfs directory (`/sys/block/nvme0n1`) holding `dir`, if any.
pub fn data_disk(dir: &Path) -> Option<PathBuf> {
    let existing = dir.ancestors().find(|p| p.exists())?;
    let dev = std::fs::metadata(existing).ok()?.dev();
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0xff);
    let sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    // A partition's directory sits inside its disk's.
    if sys.join("partition").exists() {
        sys.parent().map(Path::to_path_buf)
    } else {
        Some(sys)
    }
}

fn block_device(plan: &HostPlan) -> Vec<Finding> {
    let Some(disk) = data_disk(&plan.data_dir) else {
        return vec![Finding::unavailable(
            "data disk",
            "the I/O scheduler, queue size and cache mode of the disk under the data dir",
            format!(
                "{} is not on a block device sluice can see (overlay, tmpfs or network fs)",
                plan.data_dir.display()
            ),
        )];
    };
    let name = disk
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let queue = disk.join("queue");
    let mut findings = vec![
        Finding::file(
            format!("{name} scheduler"),
            queue.join("scheduler"),
            Rule::Selector {
                good: vec!["none"],
                wanted: "none",
            },
            "sluice issues large, already ordered O_DIRECT writes; an elevator only adds \
             latency and CPU on NVMe and virtio disks",
        ),
        Finding::file(
            format!("{name} nr_requests"),
            queue.join("nr_requests"),
            Rule::AtLeast(256),
            "enough request slots for every shard's in-flight writes and reads at the \
             probed queue depth",
        ),
    ];
    let cache_why = "a volatile write cache makes every group-commit fdatasync a cache flush";
    match std::fs::read_to_string(queue.join("write_cache")) {
        Ok(mode) if mode.trim() == "write back" => findings.push(Finding::advice(
            format!("{name} write cache"),
            Some("write back".to_owned()),
            cache_why,
            format!(
                "correct as is (fdatasync flushes it). Only if the device has power-loss \
                 protection: echo 'write through' > {}",
                queue.join("write_cache").display()
            ),
        )),
        Ok(mode) => findings.push(Finding::ok(
            format!("{name} write cache"),
            mode.trim().to_owned(),
            cache_why,
        )),
        Err(e) => findings.push(Finding::unavailable(
            format!("{name} write cache"),
            cache_why,
            e.to_string(),
        )),
    }
    findings
}

fn memory(_plan: &HostPlan) -> Vec<Finding> {
    vec![
        Finding::file(
            "transparent hugepages",
            "/sys/kernel/mm/transparent_hugepage/enabled",
            Rule::Selector {
                good: vec!["madvise", "never"],
                wanted: "madvise",
            },
            "THP 'always' stalls reactors in page-fault compaction; 'madvise' keeps huge \
             pages for code that asks",
        ),
        Finding::file(
            "transparent hugepage defrag",
            "/sys/kernel/mm/transparent_hugepage/defrag",
            Rule::Selector {
                good: vec!["madvise", "defer+madvise", "defer", "never"],
                wanted: "madvise",
            },
            "synchronous defrag on every fault ('always') adds millisecond stalls",
        ),
        sysctl(
            "vm.swappiness",
            Rule::AtMost(1),
            "a swapped-out reactor or buffer stalls a whole shard; swap only to avoid the OOM killer",
        ),
        sysctl(
            "vm.dirty_background_ratio",
            Rule::AtMost(5),
            "partition data bypasses the page cache (O_DIRECT); start writeback of other \
             dirty pages early so it does not burst into group-commit fsyncs",
        ),
        sysctl(
            "vm.dirty_ratio",
            Rule::AtMost(20),
            "cap dirty page cache so writers block before a huge writeback competes with \
             the log's fsyncs",
        ),
    ]
}

fn network_sysctls(plan: &HostPlan) -> Vec<Finding> {
    let buffers = "room for a fast producer or consumer on a long path; the kernel still \
                   autotunes below this ceiling";
    let mut findings = vec![
        sysctl(
            "net.core.somaxconn",
            Rule::AtLeast(4096),
            "the accept backlog: reconnect storms (a client fleet after a restart) overflow \
             a small one and get SYNs dropped",
        ),
        sysctl(
            "net.ipv4.tcp_max_syn_backlog",
            Rule::AtLeast(4096),
            "half-open connections queued during a reconnect storm",
        ),
        sysctl(
            "net.core.rmem_max",
            Rule::AtLeast(SOCKET_BUFFER_BYTES_MIN),
            buffers,
        ),
        sysctl(
            "net.core.wmem_max",
            Rule::AtLeast(SOCKET_BUFFER_BYTES_MIN),
            buffers,
        ),
        sysctl(
            "net.ipv4.tcp_rmem",
            Rule::ThirdFieldAtLeast(SOCKET_BUFFER_BYTES_MIN),
            buffers,
        ),
        sysctl(
            "net.ipv4.tcp_wmem",
            Rule::ThirdFieldAtLeast(SOCKET_BUFFER_BYTES_MIN),
            buffers,
        ),
    ];
    let busy_why = "busy polling trades CPU for lower network latency; off unless asked \
                    for with --busy-poll-us";
    for name in ["net.core.busy_poll", "net.core.busy_read"] {
        match plan.busy_poll_us {
            Some(us) => findings.push(sysctl(name, Rule::Exactly(us.to_string()), busy_why)),
            None => {
                let path = PathBuf::from("/proc/sys").join(name.replace('.', "/"));
                match std::fs::read_to_string(&path) {
                    Ok(value) => {
                        findings.push(Finding::ok(name, value.trim().to_owned(), busy_why))
                    }
                    Err(e) => findings.push(Finding::unavailable(name, busy_why, e.to_string())),
                }
            }
        }
    }
    findings
}

fn memlock_limit() -> Finding {
    const WHY: &str = "io_uring rings and registered DMA buffers are locked memory; a low \
                       limit makes shards fail to start or fall back to slower I/O";
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let Some(line) = limits.lines().find(|l| l.starts_with("Max locked memory")) else {
        return Finding::unavailable("memlock limit", WHY, "cannot read /proc/self/limits".into());
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    let soft = fields.get(3).copied().unwrap_or("?");
    let enough = soft == "unlimited" || soft.parse::<u64>().is_ok_and(|b| b >= MEMLOCK_BYTES_MIN);
    let current = format!("{soft} (soft limit of this shell)");
    if enough {
        Finding::ok("memlock limit", current, WHY)
    } else {
        Finding::advice(
            "memlock limit",
            Some(current),
            WHY,
            "a per-process limit: set LimitMEMLOCK=infinity in the unit (tuning/sluice.service) \
             or memlock in /etc/security/limits.d/sluice.conf"
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irq_tags_match_whole_device_names() {
        assert!(irq_matches("virtio1-req.0", "virtio1"));
        assert!(!irq_matches("virtio10-req.0", "virtio1"));
        assert!(irq_matches("nvme0q3", "nvme0q"));
        assert!(irq_matches("eth0-TxRx-0", "eth0"));
    }

    #[test]
    fn cpu_masks() {
        assert_eq!(cpu_mask(&[0, 1]), 3);
        assert_eq!(cpu_mask(&[5]), 32);
    }
}
