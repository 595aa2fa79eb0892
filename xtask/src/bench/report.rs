//! `--json`: every run's figures, their least, median and greatest values
//! per size and workload (the disk's limits are figures of the same runs),
//! and the machine they were measured on.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::{
    ProgramGroup,
    figures::Figure,
    memory::status_kib,
    program::{self, parse_size},
    synthetic::{FIGURES, Group},
};

/// The machine a bench ran on.
pub struct Machine {
    pub kernel: String,
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub memory_kib: Option<u64>,
    /// When the bench started, UTC (`2026-12-01T04:51:02Z`).
    pub date: String,
}

impl Machine {
    /// This machine; the bench started at `started`.
    pub fn this(started: SystemTime) -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let secs = started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: read("/proc/cpuinfo")
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| Some(l.split_once(':')?.1.trim().to_owned())),
            memory_kib: status_kib(&read("/proc/meminfo"), "MemTotal:"),
            date: utc(secs),
        }
    }
}

/// Seconds since the epoch as a UTC date and time (days to a civil date:
/// Howard Hinnant's `civil_from_days`).
fn utc(secs: u64) -> String {
    let (days, rest) = ((secs / 86400) as i64, secs % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Each run as an object of its figures.
fn runs<R>(figures: &[Figure<R>], runs: &[R]) -> Value {
    runs.iter()
        .map(|run| {
            figures
                .iter()
                .map(|f| (f.key.to_owned(), json!((f.value)(run))))
                .collect::<Map<_, _>>()
        })
        .collect()
}

/// Each figure's least, median and greatest value over `runs`.
fn summary<R>(figures: &[Figure<R>], runs: &[R]) -> Value {
    figures
        .iter()
        .filter_map(|f| {
            let s = f.spread(runs)?;
            Some((
                f.key.to_owned(),
                json!({ "min": s.min, "median": s.median, "max": s.max }),
            ))
        })
        .collect::<Map<_, _>>()
        .into()
}

/// The whole report. `reset`: whether the daemon's high-water mark was
/// reset before each run (else `agent_peak_mib` is since its start).
pub fn json(
    machine: &Machine,
    args: &Value,
    groups: &[Group],
    programs: &[ProgramGroup],
    reset: bool,
) -> Value {
    json!({
        "machine": {
            "kernel": machine.kernel,
            "cpus": machine.cpus,
            "cpu_model": machine.cpu_model,
            "memory_kib": machine.memory_kib,
            "date": machine.date,
        },
        "args": args,
        "agent_peak": if reset { "per run (VmHWM reset before each)" } else { "since the daemon started (VmHWM could not be reset)" },
        "synthetic": groups.iter().map(|g| json!({
            "size": g.size,
            "bytes": parse_size(&g.size),
            "threads": g.threads,
            "runs": runs(FIGURES, &g.runs),
            "summary": summary(FIGURES, &g.runs),
        })).collect::<Vec<_>>(),
        "programs": programs.iter().map(|g| json!({
            "workload": g.program.name(),
            "size": g.size,
            "bytes": parse_size(&g.size),
            "runs": runs(program::FIGURES, &g.runs),
            "summary": summary(program::FIGURES, &g.runs),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::tests::{program_run, run};

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_100_662), "2026-12-01T04:51:02Z");
    }

    #[test]
    fn the_json_has_every_run_and_each_figures_spread() {
        let machine = Machine {
            kernel: "6.1.0-test".into(),
            cpus: 2,
            cpu_model: None,
            memory_kib: Some(1024),
            date: utc(0),
        };
        let groups = [Group {
            size: "16M".into(),
            threads: 1,
            runs: vec![run(0.3, 0.2), run(0.1, 0.2), run(0.2, 0.4)],
        }];
        let programs = [ProgramGroup {
            program: super::super::Program::Jvm,
            size: "256M".into(),
            runs: vec![program_run(1.5)],
        }];
        let v = json(&machine, &json!({"runs": 3}), &groups, &programs, true);
        assert_eq!(v["machine"]["kernel"], "6.1.0-test");
        assert_eq!(v["machine"]["cpus"], 2);
        let g = &v["synthetic"][0];
        assert_eq!(g["bytes"], 16 << 20);
        assert_eq!(g["runs"].as_array().unwrap().len(), 3);
        assert_eq!(g["runs"][1]["durable_s"], 0.1);
        assert_eq!(
            g["summary"]["durable_s"],
            json!({"min": 0.1, "median": 0.2, "max": 0.3})
        );
        // The disk's limit, measured in the same runs.
        assert_eq!(g["summary"]["disk_s"]["max"], 0.4);
        assert_eq!(g["summary"]["durable_per_disk"]["min"], 0.5);
        let p = &v["programs"][0];
        assert_eq!(p["workload"], "jvm");
        assert_eq!(p["summary"]["durable_s"]["median"], 1.5);
        // A ratio that cannot be taken is null, not an invalid number.
        assert!(
            serde_json::to_string(&v)
                .unwrap()
                .contains("\"on_disk_per_resident\":null")
        );
    }
}
