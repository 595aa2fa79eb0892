//! The realistic workloads: a program run under the preload shim
//! (`suspend-agent run`) that builds a few hundred MiB of its own kind of
//! data, takes a digest of it, says `ready pid=N`, and at each `check`
//! answers `state memory=intact` (or `changed`) as the synthetic workload
//! does: python3 holding dicts, strings and lists; a JVM with a filled heap.

use std::{path::Path, process::Command};

use anyhow::{Context as _, Result};
use suspend_harness::procfs::rss_kib;

use super::{ExitCycle, disk_limit, exit_and_resume, figures::Figure, memory::DaemonPeak};

/// The Python workload: `argv[1]` MiB (about) of dicts, strings and lists,
/// a digest of all of it taken once built and again at each `check`.
const PYTHON: &str = r#"
import os, sys, zlib
mib = int(sys.argv[1])
n = mib * 1024 * 1024 // 190
names, lists = {}, []
for i in range(n):
    s = f"value {i} " + "abcdefghij" * (i % 9)
    names[f"key{i}"] = s
    if i % 4 == 0:
        lists.append([i, i * 2.5, s, (i, str(i))])
def digest():
    c = 0
    for k, v in names.items():
        c = zlib.crc32(v.encode(), zlib.crc32(k.encode(), c))
    return (len(names), len(lists), c, sum(l[0] + l[1] for l in lists))
want = digest()
print(f"ready pid={os.getpid()}", flush=True)
for line in sys.stdin:
    if line.split() == ["check"]:
        intact = digest() == want
        print(f"state memory={'intact' if intact else 'changed'}", flush=True)
        if not intact:
            sys.exit(1)
    elif line.split() == ["exit"]:
        sys.exit(0)
"#;

/// The JVM workload (`java Fill.java MIB`, launched from source): about
/// `MIB` MiB of a `HashMap` from strings to strings and to 4 KiB arrays of
/// text records with random numbers in them, in a heap capped at 1.5 times that, collected once built;
/// a digest of every entry taken then and at each `check`.
const JVM: &str = r#"
import java.io.*;
import java.util.*;
import java.util.zip.CRC32;

public class Fill {
    static final Map<String, Object> heap = new HashMap<>();

    static long digest() {
        CRC32 crc = new CRC32();
        long sum = heap.size();
        for (Map.Entry<String, Object> e : heap.entrySet()) {
            crc.reset();
            crc.update(e.getKey().getBytes());
            Object v = e.getValue();
            crc.update(v instanceof byte[] ? (byte[]) v : ((String) v).getBytes());
            sum += crc.getValue();
        }
        return sum;
    }

    public static void main(String[] args) throws Exception {
        long bytes = Long.parseLong(args[0]) << 20;
        Random random = new Random(42);
        long held = 0;
        for (int i = 0; held < bytes; i++) {
            String key = "key" + i;
            if (i % 3 == 0) {
                // A buffer of records (a cached page of a table), its
                // numbers random.
                byte[] block = new byte[4096];
                int at = 0;
                while (at < block.length) {
                    byte[] row = ("row," + i + "," + random.nextInt(1000000) + ","
                        + Long.toHexString(random.nextLong()) + ",name" + (i % 977) + "\n").getBytes();
                    int n = Math.min(row.length, block.length - at);
                    System.arraycopy(row, 0, block, at, n);
                    at += n;
                }
                heap.put(key, block);
                held += block.length + 64;
            } else {
                String s = "value " + i + " " + "abcdefghij".repeat(i % 40);
                heap.put(key, s);
                held += s.length() + 96;
            }
        }
        System.gc();
        long want = digest();
        System.out.println("ready pid=" + ProcessHandle.current().pid());
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null;) {
            if (line.trim().equals("check")) {
                boolean intact = digest() == want;
                System.out.println("state memory=" + (intact ? "intact" : "changed"));
                if (!intact) System.exit(1);
            } else if (line.trim().equals("exit")) {
                System.exit(0);
            }
        }
    }
}
"#;

/// A realistic workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Program {
    Python,
    Jvm,
}

impl Program {
    /// Its name in the output and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::Jvm => "jvm",
        }
    }

    /// What it holds, for the progress line.
    pub fn holding(self, size: &str) -> String {
        match self {
            Self::Python => format!("python3 holding about {size} in dicts, strings and lists"),
            Self::Jvm => format!("a JVM holding about {size} of strings and byte arrays"),
        }
    }

    /// `suspend-agent run -- PROGRAM…` holding about `mib` MiB; its source
    /// is written next to `image` where it needs a file.
    fn command(self, bin: &Path, mib: u64, image: &Path) -> Result<Command> {
        let mut command = Command::new(bin.join("suspend-agent"));
        command.args(["run", "--"]);
        match self {
            Self::Python => {
                command.args(["python3", "-c", PYTHON, &mib.to_string()]);
            }
            Self::Jvm => {
                // A source file launch needs the file named after its class.
                let dir = image.with_extension("jvm");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let source = dir.join("Fill.java");
                std::fs::write(&source, JVM)
                    .with_context(|| format!("writing {}", source.display()))?;
                command
                    .arg("java")
                    .arg(format!("-Xmx{}m", mib * 3 / 2 + 64))
                    .arg(&source)
                    .arg(mib.to_string());
            }
        }
        Ok(command)
    }
}

/// `256M`, `1G`, `64K` or a plain number, in bytes.
pub fn parse_size(size: &str) -> Option<u64> {
    let (digits, unit) = match size.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => size.split_at(at),
        None => (size, ""),
    };
    let shift = match unit {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        _ => return None,
    };
    digits.parse::<u64>().ok().map(|n| n << shift)
}

/// One run of a realistic workload, in seconds and bytes.
pub struct ProgramRun {
    pub rss: u64,
    /// The suspend with --exit and the resume from its image.
    pub cycle: ExitCycle,
    /// Writing and `fdatasync`ing `rss` bytes, write-back started as it
    /// goes.
    pub disk_rss: f64,
    /// The daemon's peak resident memory over the run (KiB).
    pub daemon_peak_kib: u64,
}

const MIB: f64 = 1048576.0;

/// The figures of a realistic workload's run.
pub const FIGURES: &[Figure<ProgramRun>] = &[
    Figure {
        key: "resident_mib",
        header: "resident MiB",
        decimals: 1,
        value: |r| r.rss as f64 / MIB,
    },
    Figure {
        key: "image_mib",
        header: "image MiB",
        decimals: 1,
        value: |r| r.cycle.image as f64 / MIB,
    },
    Figure {
        key: "on_disk_mib",
        header: "on disk MiB",
        decimals: 1,
        value: |r| r.cycle.on_disk as f64 / MIB,
    },
    Figure {
        key: "on_disk_per_resident",
        header: "disk/res",
        decimals: 2,
        value: |r| r.cycle.on_disk as f64 / r.rss as f64,
    },
    Figure {
        key: "suspend_s",
        header: "suspend s",
        decimals: 3,
        value: |r| r.cycle.suspend,
    },
    Figure {
        key: "durable_s",
        header: "durable s",
        decimals: 3,
        value: |r| r.cycle.durable,
    },
    Figure {
        key: "disk_resident_s",
        header: "disk s",
        decimals: 3,
        value: |r| r.disk_rss,
    },
    Figure {
        key: "durable_per_disk",
        header: "dur/disk",
        decimals: 2,
        value: |r| r.cycle.durable / r.disk_rss,
    },
    Figure {
        key: "resume_s",
        header: "resume s",
        decimals: 3,
        value: |r| r.cycle.restore,
    },
    Figure {
        key: "agent_peak_mib",
        header: "agent MiB",
        decimals: 1,
        value: |r| r.daemon_peak_kib as f64 / 1024.0,
    },
    Figure {
        key: "resume_peak_mib",
        header: "resume MiB",
        decimals: 1,
        value: |r| r.cycle.resume_peak_kib as f64 / 1024.0,
    },
];

/// One run of `program` holding about `size`: started, suspended with
/// --exit once ready, resumed from its image and checked; then what this
/// disk needs to make its resident memory durable.
pub fn run(
    bin: &Path,
    program: Program,
    size: &str,
    image: &Path,
    daemon: &mut DaemonPeak,
) -> Result<ProgramRun> {
    let mib =
        parse_size(size).with_context(|| format!("--{} {size}: not a size", program.name()))? >> 20;
    let mut command = program.command(bin, mib, image)?;
    let workload = crate::live::start_program(&mut command)?;
    let pid = workload.ready_pid()?;
    let pid_number: u32 = pid
        .parse()
        .with_context(|| format!("the {} workload's pid", program.name()))?;
    // The shim registered it before the program started: it is `ready`
    // only once its data is built.
    let rss = rss_kib(pid_number).unwrap_or(0) * 1024;
    daemon.start();
    let cycle = exit_and_resume(bin, workload, &pid, image)?;
    let daemon_peak_kib = daemon.read();
    let disk_rss = disk_limit(image, rss, true)?;
    Ok(ProgramRun {
        rss,
        cycle,
        disk_rss,
        daemon_peak_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_k_m_g() {
        assert_eq!(parse_size("256M"), Some(256 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("12T"), None);
        assert_eq!(parse_size("M"), None);
    }

    #[test]
    fn the_jvm_source_is_the_class_it_names_and_checks_its_data() {
        assert!(JVM.contains("public class Fill "));
        for program in [PYTHON, JVM] {
            assert!(program.contains("ready pid="));
            assert!(program.contains("state memory="));
        }
    }
}
