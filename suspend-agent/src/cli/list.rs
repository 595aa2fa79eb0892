//! `suspend-agent list`.

use std::fs;

use serde::Serialize;
use suspend_common::registry::{Registration, context_name, state_name};

use crate::{exit, hold::HeldRecord, procfs, registry::Registry, sys};

/// List the processes that opted in
///
/// Reads the pinned registry map (root); works while the daemon is stopped,
/// too.
///
/// Columns: PID, UID, STATE (registered, unusable: handler reset or
/// replaced, suspending: a handshake is running), SIGNALS (suspend/resume),
/// CONTEXT (where callbacks run: thread or signal), AGE (since it
/// registered), SENT/DELIVERED (suspend signals the kernel generated for it /
/// delivered to its handler, counted by eBPF), COMMAND. A held process
/// (a suspend's default) has a second line: how long it has been held, its
/// image, its resident memory now, and what only the held process has
/// (not its image).
#[derive(clap::Args)]
pub struct Args {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    pid: u32,
    uid: u32,
    state: &'static str,
    suspend_signal: u32,
    resume_signal: u32,
    context: &'static str,
    registered_seconds_ago: f64,
    suspend_sent: u32,
    suspend_delivered: u32,
    resume_sent: u32,
    resume_delivered: u32,
    handler_resets: u32,
    command: String,
    /// For a held process.
    #[serde(skip_serializing_if = "Option::is_none")]
    held: Option<Held>,
}

#[derive(Serialize)]
struct Held {
    image: std::path::PathBuf,
    held_seconds: u64,
    resident_bytes: u64,
    held_only: Vec<String>,
    /// It runs again, its memory still being given back from the image
    /// (`held_seconds` then counts from its resume).
    refilling: bool,
    /// Its parked threads that ran since it was held, as the eBPF run
    /// witness saw them: `(tid, times switched in)`; empty: none ran.
    /// Absent when the witness cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    ran_while_held: Option<Vec<(u32, u32)>>,
    /// An agent serves that refill now (else it waits for one: `resume
    /// PID` or the next daemon starts it).
    #[serde(skip_serializing_if = "Option::is_none")]
    served: Option<bool>,
}

fn held(pid: u32) -> Option<Held> {
    let record = HeldRecord::find(pid).ok().flatten()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let since = record.refill.as_ref().map_or(record.since, |r| r.since);
    let ran_while_held = record
        .refill
        .is_none()
        .then(|| crate::hold::ran_while_held(&record))
        .flatten();
    Some(Held {
        image: record.image,
        held_seconds: now.saturating_sub(since),
        resident_bytes: procfs::rss_bytes(pid).unwrap_or(0),
        held_only: record.held_only,
        refilling: record.refill.is_some(),
        ran_while_held,
        served: record
            .refill
            .is_some()
            .then(|| crate::hold::refill::being_served(pid)),
    })
}

fn row(reg: &Registration, now_ns: u64) -> Row {
    let command = fs::read_to_string(format!("/proc/{}/comm", reg.pid))
        .map(|c| c.trim_end().to_owned())
        .unwrap_or_else(|_| "?".into());
    Row {
        pid: reg.pid,
        uid: reg.uid,
        state: state_name(reg.state),
        suspend_signal: reg.suspend_signal,
        resume_signal: reg.resume_signal,
        context: context_name(reg.context),
        registered_seconds_ago: now_ns.saturating_sub(reg.registered_ns) as f64 / 1e9,
        suspend_sent: reg.suspend_sent,
        suspend_delivered: reg.suspend_delivered,
        resume_sent: reg.resume_sent,
        resume_delivered: reg.resume_delivered,
        handler_resets: reg.handler_resets,
        command,
        held: held(reg.pid),
    }
}

fn age(seconds: f64) -> String {
    let s = seconds as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    super::require_root("reading the pinned registry")?;
    let registry = Registry::open_pinned()?;
    let now = sys::boottime_ns();
    let rows: Vec<Row> = registry.all()?.iter().map(|reg| row(reg, now)).collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        eprintln!("no process has opted in");
        return Ok(exit::OK);
    }
    println!(
        "{:>7} {:>6} {:<11} {:>7} {:<7} {:>7} {:>14} COMMAND",
        "PID", "UID", "STATE", "SIGNALS", "CONTEXT", "AGE", "SENT/DELIVERED"
    );
    for r in rows {
        println!(
            "{:>7} {:>6} {:<11} {:>7} {:<7} {:>7} {:>14} {}",
            r.pid,
            r.uid,
            r.state,
            format!("{}/{}", r.suspend_signal, r.resume_signal),
            r.context,
            age(r.registered_seconds_ago),
            format!("{}/{}", r.suspend_sent, r.suspend_delivered),
            r.command
        );
        if let Some(h) = &r.held {
            let only = if h.held_only.is_empty() {
                String::new()
            } else {
                format!("; only in the held process: {}", h.held_only.join(", "))
            };
            if h.refilling {
                println!(
                    "{:>7} running again for {}, its memory still coming back from image {} ({}), resident {} KiB",
                    "",
                    age(h.held_seconds as f64),
                    h.image.display(),
                    if h.served == Some(true) {
                        "served"
                    } else {
                        "not served: `suspend-agent resume PID` finishes it"
                    },
                    h.resident_bytes / 1024
                );
                continue;
            }
            let ran = match &h.ran_while_held {
                None => String::new(),
                Some(ran) if ran.is_empty() => "; no thread has run since".into(),
                Some(ran) => format!(
                    "; ran since: {}",
                    ran.iter()
                        .map(|(tid, n)| format!("thread {tid} {n} time(s)"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            println!(
                "{:>7} held {}, image {}, resident {} KiB{ran}{only}",
                "",
                age(h.held_seconds as f64),
                h.image.display(),
                h.resident_bytes / 1024
            );
        }
    }
    Ok(exit::OK)
}
