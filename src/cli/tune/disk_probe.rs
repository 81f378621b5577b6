//! An iotune-like probe: measures the data disk's O_DIRECT write bandwidth for a range of
//! write sizes (one write in flight), then for a range of queue depths at the best size,
//! and records the smallest size and depth that reach 90% of the best bandwidth.
//!
//! Queue depth is produced with one thread per in-flight write (pwrite on an O_DIRECT file),
//! which keeps the probe free of unsafe code; the kernel sees the same concurrent direct
//! writes an io_uring submitter would issue.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::constants::DMA_ALIGNMENT;

const WRITE_SIZES_BYTES: &[usize] = &[
    4 << 10,
    16 << 10,
    64 << 10,
    128 << 10,
    256 << 10,
    512 << 10,
    1 << 20,
    4 << 20,
];
const QUEUE_DEPTHS: &[usize] = &[1, 2, 4, 8, 16, 32];
/// A point counts as "as good as the best" at this share of the best bandwidth.
const GOOD_ENOUGH_SHARE: f64 = 0.9;
const PROBE_FILE_NAME: &str = ".sluice-disk-probe.tmp";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: O_DIRECT writes are not supported here ({source}); probe the real data disk")]
    NoDirectIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("probe file of {bytes} bytes is too small for {write_bytes}-byte writes")]
    TooSmall { bytes: u64, write_bytes: usize },
}

#[derive(Debug, Clone, Copy)]
pub struct ProbeSettings {
    /// Size of the scratch file written (and overwritten) by the probe.
    pub file_bytes: u64,
    /// How long each measurement point runs.
    pub point_duration: Duration,
}

/// The probe's result, as written to `io-properties.toml`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IoProperties {
    pub path: PathBuf,
    /// Smallest write size within 10% of the best single-writer bandwidth.
    pub write_bytes: usize,
    /// Smallest number of writes in flight within 10% of the best bandwidth at `write_bytes`.
    pub write_queue_depth: usize,
    pub write_bandwidth_bytes_per_second: u64,
    /// 4 KiB writes per second at `write_queue_depth`.
    pub write_iops_4k: u64,
    /// Every measurement: (write bytes, queue depth, bytes per second).
    pub measurements: Vec<(usize, usize, u64)>,
}

pub fn probe(dir: &Path, settings: ProbeSettings) -> Result<IoProperties, ProbeError> {
    let path = dir.join(PROBE_FILE_NAME);
    let io = |source| ProbeError::Io {
        path: path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::EINVAL) => ProbeError::NoDirectIo {
                path: path.clone(),
                source,
            },
            _ => io(source),
        })?;
    let result = run_probe(&file, &path, settings);
    // The scratch file is ours; remove it whatever happened.
    let _ = std::fs::remove_file(&path);
    result
}

fn run_probe(
    file: &File,
    path: &Path,
    settings: ProbeSettings,
) -> Result<IoProperties, ProbeError> {
    let largest = WRITE_SIZES_BYTES
        .iter()
        .copied()
        .max()
        .unwrap_or(DMA_ALIGNMENT);
    let file_bytes = settings.file_bytes - settings.file_bytes % largest as u64;
    if file_bytes < largest as u64 * 2 {
        return Err(ProbeError::TooSmall {
            bytes: settings.file_bytes,
            write_bytes: largest,
        });
    }
    // Allocate every block first, so the measurements are overwrites (as segments are
    // preallocated) rather than block allocation.
    measure(file, path, largest, 1, file_bytes, None)?;
    let mut measurements = Vec::new();
    let mut by_size = Vec::new();
    for &size in WRITE_SIZES_BYTES {
        let rate = measure(
            file,
            path,
            size,
            1,
            file_bytes,
            Some(settings.point_duration),
        )?;
        measurements.push((size, 1, rate));
        by_size.push((size, rate));
    }
    let write_bytes = smallest_good_enough(&by_size);
    let mut by_depth = Vec::new();
    for &depth in QUEUE_DEPTHS {
        let rate = measure(
            file,
            path,
            write_bytes,
            depth,
            file_bytes,
            Some(settings.point_duration),
        )?;
        measurements.push((write_bytes, depth, rate));
        by_depth.push((depth, rate));
    }
    let write_queue_depth = smallest_good_enough(&by_depth);
    let bandwidth = by_depth
        .iter()
        .find(|(d, _)| *d == write_queue_depth)
        .map_or(0, |(_, r)| *r);
    let small = DMA_ALIGNMENT;
    let rate_4k = measure(
        file,
        path,
        small,
        write_queue_depth,
        file_bytes,
        Some(settings.point_duration),
    )?;
    measurements.push((small, write_queue_depth, rate_4k));
    Ok(IoProperties {
        path: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        write_bytes,
        write_queue_depth,
        write_bandwidth_bytes_per_second: bandwidth,
        write_iops_4k: rate_4k / small as u64,
        measurements,
    })
}

/// The smallest key whose rate is within [`GOOD_ENOUGH_SHARE`] of the best.
fn smallest_good_enough(points: &[(usize, u64)]) -> usize {
    let best = points.iter().map(|(_, r)| *r).max().unwrap_or(0);
    points
        .iter()
        .find(|(_, r)| *r as f64 >= best as f64 * GOOD_ENOUGH_SHARE)
        .map_or(1, |(k, _)| *k)
}

/// Writes `size`-byte blocks with `depth` writers, each sweeping its own stripe of the
/// file, for `duration` (or one full pass when `None`). Returns bytes per second.
fn measure(
    file: &File,
    path: &Path,
    size: usize,
    depth: usize,
    file_bytes: u64,
    duration: Option<Duration>,
) -> Result<u64, ProbeError> {
    let blocks = file_bytes / size as u64;
    let started = Instant::now();
    let written: Result<Vec<u64>, std::io::Error> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..depth as u64)
            .map(|writer| {
                scope.spawn(move || -> Result<u64, std::io::Error> {
                    let mut storage = vec![0xa5u8; size + DMA_ALIGNMENT];
                    let start = storage.as_ptr().align_offset(DMA_ALIGNMENT);
                    let buffer = &mut storage[start..start + size];
                    buffer[0] = 0x5a;
                    let mut bytes = 0u64;
                    let mut block = writer;
                    loop {
                        if let Some(limit) = duration {
                            if started.elapsed() >= limit {
                                break;
                            }
                        } else if block >= blocks {
                            break;
                        }
                        file.write_at(buffer, (block % blocks) * size as u64)?;
                        bytes += size as u64;
                        block += depth as u64;
                    }
                    Ok(bytes)
                })
            })
            .collect();
        writers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("writer panicked")))
            })
            .collect()
    });
    let written: u64 = written
        .map_err(|source| ProbeError::Io {
            path: path.to_owned(),
            source,
        })?
        .iter()
        .sum();
    file.sync_data().map_err(|source| ProbeError::Io {
        path: path.to_owned(),
        source,
    })?;
    let seconds = started.elapsed().as_secs_f64().max(1e-6);
    Ok((written as f64 / seconds) as u64)
}

/// Writes `properties` as TOML with a header explaining who reads it.
pub fn write_properties(path: &Path, properties: &IoProperties) -> Result<(), ProbeError> {
    let body = toml::to_string(properties).map_err(|e| ProbeError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })?;
    let text = format!(
        "# Disk properties measured by `sluice tune --probe-disk`. Re-run after changing disks.\n\
         # Read by the log (see tuning/README.md): write-bytes bounds one coalesced O_DIRECT\n\
         # write, write-queue-depth bounds a shard's writes in flight.\n{body}"
    );
    let temp = path.with_extension("toml.tmp");
    std::fs::write(&temp, text)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|source| ProbeError::Io {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_smallest_point_near_the_best() {
        let points = [(1, 100), (2, 180), (4, 195), (8, 200)];
        assert_eq!(smallest_good_enough(&points), 2);
    }
}
