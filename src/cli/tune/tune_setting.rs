//! One tunable host setting: where it lives, what sluice wants, why, and how to apply it
//! safely (read first, write only what was read, read back to verify).

use std::path::PathBuf;

/// What counts as a good value.
#[derive(Debug, Clone)]
pub enum Rule {
    /// An integer at least this large.
    AtLeast(u64),
    /// An integer at most this large.
    AtMost(u64),
    /// Exactly this text.
    Exactly(String),
    /// A sysfs selector (`always [madvise] never`): the bracketed entry is one of `good`;
    /// `wanted` is written when it is not (only if the kernel offers it).
    Selector {
        good: Vec<&'static str>,
        wanted: &'static str,
    },
    /// The third field of a three-number sysctl (`tcp_rmem`: min default max) at least this.
    ThirdFieldAtLeast(u64),
    /// A hex CPU mask (comma-grouped, as in `xps_cpus`) equal to this mask.
    CpuMask(u128),
    /// A CPU list (`0-3,6`, as in `smp_affinity_list`) equal to this set.
    CpuList(Vec<usize>),
}

/// Why a setting needs no change, would change, changed, or is left alone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "detail")]
pub enum Status {
    Ok,
    WouldChange,
    Changed,
    Failed(String),
    /// Not present or not readable here (a VM without cpufreq, a read-only /proc/sys).
    Unavailable(String),
    /// Needs an operator's decision or a change outside this process (limits, firmware).
    Advice(String),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub name: String,
    pub path: Option<PathBuf>,
    pub current: Option<String>,
    pub wanted: Option<String>,
    pub why: String,
    #[serde(flatten)]
    pub status: Status,
    #[serde(skip)]
    rule: Option<Rule>,
}

impl Finding {
    /// A file-backed setting: reads `path` now and compares it with `rule`.
    pub fn file(
        name: impl Into<String>,
        path: impl Into<PathBuf>,
        rule: Rule,
        why: &str,
    ) -> Finding {
        let path = path.into();
        let mut finding = Finding {
            name: name.into(),
            path: Some(path.clone()),
            current: None,
            wanted: None,
            why: why.to_owned(),
            status: Status::Ok,
            rule: None,
        };
        let current = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().to_owned(),
            Err(e) => {
                finding.status = Status::Unavailable(format!("cannot read: {e}"));
                return finding;
            }
        };
        match evaluate(&rule, &current) {
            Ok(None) => finding.status = Status::Ok,
            Ok(Some(wanted)) => {
                finding.wanted = Some(wanted);
                finding.status = Status::WouldChange;
            }
            Err(reason) => finding.status = Status::Unavailable(reason),
        }
        finding.current = Some(current);
        finding.rule = Some(rule);
        finding
    }

    /// A finding that is only reported (no file sluice would write).
    pub fn advice(
        name: impl Into<String>,
        current: Option<String>,
        why: &str,
        advice: String,
    ) -> Finding {
        Finding {
            name: name.into(),
            path: None,
            current,
            wanted: None,
            why: why.to_owned(),
            status: Status::Advice(advice),
            rule: None,
        }
    }

    pub fn unavailable(name: impl Into<String>, why: &str, reason: String) -> Finding {
        Finding {
            name: name.into(),
            path: None,
            current: None,
            wanted: None,
            why: why.to_owned(),
            status: Status::Unavailable(reason),
            rule: None,
        }
    }

    pub fn ok(name: impl Into<String>, current: String, why: &str) -> Finding {
        Finding {
            name: name.into(),
            path: None,
            current: Some(current),
            wanted: None,
            why: why.to_owned(),
            status: Status::Ok,
            rule: None,
        }
    }

    /// Writes the wanted value if one is due, then reads it back. Only settings that were
    /// read successfully have a wanted value, so nothing unreadable is ever written.
    pub fn apply(&mut self) {
        if self.status != Status::WouldChange {
            return;
        }
        let (Some(path), Some(wanted), Some(rule)) = (&self.path, &self.wanted, &self.rule) else {
            return;
        };
        if let Err(e) = std::fs::write(path, format!("{wanted}\n")) {
            self.status = Status::Failed(format!("write refused: {e}"));
            return;
        }
        let read_back = match std::fs::read_to_string(path) {
            Ok(text) => text.trim().to_owned(),
            Err(e) => {
                self.status = Status::Failed(format!("cannot read back: {e}"));
                return;
            }
        };
        self.status = match evaluate(rule, &read_back) {
            Ok(None) => Status::Changed,
            _ => Status::Failed(format!("read back {read_back:?}")),
        };
        self.current = Some(read_back);
    }
}

/// `Ok(None)`: already good; `Ok(Some(v))`: write `v`; `Err`: cannot judge or fix it.
fn evaluate(rule: &Rule, current: &str) -> Result<Option<String>, String> {
    let number = |text: &str| {
        text.trim()
            .parse::<u64>()
            .map_err(|_| format!("unexpected value {text:?}"))
    };
    match rule {
        Rule::AtLeast(min) => Ok((number(current)? < *min).then(|| min.to_string())),
        Rule::AtMost(max) => Ok((number(current)? > *max).then(|| max.to_string())),
        Rule::Exactly(want) => Ok((current != want).then(|| want.clone())),
        Rule::Selector { good, wanted } => {
            let selected = current
                .split_whitespace()
                .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
                .ok_or_else(|| format!("no selected entry in {current:?}"))?;
            if good.contains(&selected) {
                return Ok(None);
            }
            let offered = current
                .split_whitespace()
                .any(|w| w.trim_matches(['[', ']']) == *wanted);
            if offered {
                Ok(Some((*wanted).to_owned()))
            } else {
                Err(format!(
                    "{wanted:?} is not offered by this kernel ({current})"
                ))
            }
        }
        Rule::ThirdFieldAtLeast(min) => {
            let fields: Vec<&str> = current.split_whitespace().collect();
            let [first, second, third] = fields[..] else {
                return Err(format!("expected three numbers, got {current:?}"));
            };
            Ok((number(third)? < *min).then(|| format!("{first} {second} {min}")))
        }
        Rule::CpuMask(want) => {
            let hex: String = current.chars().filter(|c| *c != ',').collect();
            let hex = hex.trim_start_matches('0');
            let have = if hex.is_empty() {
                0
            } else {
                u128::from_str_radix(hex, 16).map_err(|_| format!("not a CPU mask: {current:?}"))?
            };
            Ok((have != *want).then(|| format!("{want:x}")))
        }
        Rule::CpuList(want) => {
            let have =
                parse_cpu_list(current).ok_or_else(|| format!("not a CPU list: {current:?}"))?;
            Ok((have != *want).then(|| format_cpu_list(want)))
        }
    }
}

/// Parses `0-3,6` into `[0, 1, 2, 3, 6]` (sorted, deduplicated).
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((low, high)) => {
                let (low, high): (usize, usize) = (low.parse().ok()?, high.parse().ok()?);
                if high < low || high - low > 4096 {
                    return None;
                }
                cpus.extend(low..=high);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

pub fn format_cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_judge_and_propose() {
        assert_eq!(
            evaluate(&Rule::AtLeast(4096), "128"),
            Ok(Some("4096".into()))
        );
        assert_eq!(evaluate(&Rule::AtLeast(4096), "65535"), Ok(None));
        assert_eq!(evaluate(&Rule::AtMost(1), "60"), Ok(Some("1".into())));
        let thp = Rule::Selector {
            good: vec!["madvise", "never"],
            wanted: "madvise",
        };
        assert_eq!(
            evaluate(&thp, "[always] madvise never"),
            Ok(Some("madvise".into()))
        );
        assert_eq!(evaluate(&thp, "always [madvise] never"), Ok(None));
        let none = Rule::Selector {
            good: vec!["none"],
            wanted: "none",
        };
        assert!(
            evaluate(&none, "[mq-deadline] kyber").is_err(),
            "none not offered"
        );
        assert_eq!(
            evaluate(&Rule::ThirdFieldAtLeast(16 << 20), "4096 131072 6291456"),
            Ok(Some("4096 131072 16777216".into()))
        );
        assert_eq!(
            evaluate(&Rule::CpuMask(0b11), "00000000,00000003"),
            Ok(None)
        );
        assert_eq!(evaluate(&Rule::CpuMask(0b10), "0"), Ok(Some("2".into())));
        assert_eq!(
            evaluate(&Rule::CpuList(vec![0]), "0-1"),
            Ok(Some("0".into()))
        );
        assert_eq!(parse_cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
    }

    #[test]
    fn apply_writes_reads_back_and_is_idempotent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("somaxconn");
        std::fs::write(&path, "128\n").expect("write");
        let mut finding = Finding::file("somaxconn", &path, Rule::AtLeast(4096), "test");
        assert_eq!(finding.status, Status::WouldChange);
        finding.apply();
        assert_eq!(finding.status, Status::Changed);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "4096\n");
        let mut again = Finding::file("somaxconn", &path, Rule::AtLeast(4096), "test");
        assert_eq!(again.status, Status::Ok, "second run finds nothing to do");
        again.apply();
        assert_eq!(again.status, Status::Ok);
        // Never written: a setting that could not be read.
        let mut missing = Finding::file("x", dir.path().join("absent"), Rule::AtLeast(1), "t");
        missing.apply();
        assert!(matches!(missing.status, Status::Unavailable(_)));
        assert!(!dir.path().join("absent").exists());
    }
}
