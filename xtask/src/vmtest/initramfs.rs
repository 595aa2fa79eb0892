//! The guest's root file system: a tree of guest paths, written as an
//! uncompressed newc cpio archive (the fastest choice under TCG), and the
//! `/init` script that mounts what the suite needs, runs every integration
//! test executable and reports one verdict.

use std::{
    collections::BTreeMap,
    fs,
    io::{self, BufWriter, Write},
    os::unix::fs::PermissionsExt as _,
    path::{Component, Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};

use super::payload::{GUEST_BIN, GUEST_TESTS};

/// The line `/init` prints (on the console and alone on the second serial
/// port) with the status of the suite: `VMTEST_EXIT=0`.
pub const VERDICT: &str = "VMTEST_EXIT=";
/// Lines `/init` prints before the tests: `uname -r` and the active LSMs.
pub const UNAME: &str = "VMTEST_UNAME=";
pub const LSM: &str = "VMTEST_LSM=";
/// The prefix of each kernel warning logged while the tests ran.
pub const KERNEL_WARNING: &str = "vmtest: kernel warning: ";

/// One entry of the guest file system.
#[derive(Clone)]
pub enum Node {
    Dir,
    /// A host file copied in (content read when the archive is written).
    File {
        source: PathBuf,
        mode: u32,
    },
    Data {
        bytes: Vec<u8>,
        mode: u32,
    },
    Symlink(PathBuf),
    CharDevice {
        major: u32,
        minor: u32,
        mode: u32,
    },
}

impl Node {
    /// `source`, with its permission bits (symlinks followed).
    pub fn file(source: &Path) -> Result<Self> {
        let meta = fs::metadata(source).with_context(|| format!("reading {}", source.display()))?;
        if !meta.is_file() {
            bail!("{} is not a file", source.display());
        }
        Ok(Self::File {
            source: source.to_path_buf(),
            mode: meta.permissions().mode() & 0o7777,
        })
    }

    /// A small text file, mode 0644.
    pub fn data(bytes: &[u8]) -> Self {
        Self::Data {
            bytes: bytes.to_vec(),
            mode: 0o644,
        }
    }
}

/// Guest paths and what they are. Parents sort before their children
/// (paths compare component by component), which is the order the kernel
/// needs to unpack them.
#[derive(Clone, Default)]
pub struct Tree {
    nodes: BTreeMap<PathBuf, Node>,
}

impl Tree {
    /// Adds (or replaces) `path`, an absolute guest path, and every missing
    /// parent directory.
    pub fn insert(&mut self, path: impl AsRef<Path>, node: Node) {
        let path = path.as_ref();
        for parent in path.ancestors().skip(1) {
            if parent.parent().is_some() {
                self.nodes.entry(parent.to_path_buf()).or_insert(Node::Dir);
            }
        }
        self.nodes.insert(path.to_path_buf(), node);
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.nodes.contains_key(path)
    }

    /// Writes the tree as a newc cpio archive to `path`; returns its size.
    pub fn write_cpio(&self, path: &Path) -> Result<u64> {
        let file =
            fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut cpio = Cpio {
            out: BufWriter::new(file),
            written: 0,
            inode: 0,
        };
        for (guest, node) in &self.nodes {
            // "usr/bin/python3": relative names, no "." or "..".
            let name: PathBuf = guest
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .collect();
            let name = name.to_string_lossy();
            match node {
                Node::Dir => cpio.entry(&name, 0o040_755, 0, &[]),
                Node::File { source, mode } => {
                    let bytes = fs::read(source)
                        .with_context(|| format!("reading {}", source.display()))?;
                    cpio.entry(&name, 0o100_000 | mode, 0, &bytes)
                }
                Node::Data { bytes, mode } => cpio.entry(&name, 0o100_000 | mode, 0, bytes),
                Node::Symlink(target) => {
                    cpio.entry(&name, 0o120_777, 0, target.as_os_str().as_encoded_bytes())
                }
                Node::CharDevice { major, minor, mode } => {
                    cpio.entry(&name, 0o020_000 | mode, (major << 8) | minor, &[])
                }
            }
            .with_context(|| format!("writing {}", path.display()))?;
        }
        cpio.entry("TRAILER!!!", 0, 0, &[])?;
        cpio.out.flush()?;
        Ok(cpio.written)
    }
}

/// A newc ("070701") archive being written.
struct Cpio<W> {
    out: W,
    written: u64,
    inode: u32,
}

impl<W: Write> Cpio<W> {
    /// One entry; `rdev` is `major << 8 | minor` for device nodes.
    fn entry(&mut self, name: &str, mode: u32, rdev: u32, data: &[u8]) -> io::Result<()> {
        self.inode += 1;
        let is_dir = mode & 0o170_000 == 0o040_000;
        let fields = [
            self.inode,
            mode,
            0, // uid
            0, // gid
            if is_dir { 2 } else { 1 },
            0, // mtime
            u32::try_from(data.len()).map_err(io::Error::other)?,
            0, // devmajor
            0, // devminor
            rdev >> 8,
            rdev & 0xff,
            u32::try_from(name.len() + 1).map_err(io::Error::other)?,
            0, // check
        ];
        let mut header = String::from("070701");
        for field in fields {
            header.push_str(&format!("{field:08X}"));
        }
        self.write(header.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        self.write(data)?;
        self.pad()
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Pads to the next multiple of 4 bytes.
    fn pad(&mut self) -> io::Result<()> {
        let len = (4 - self.written % 4) % 4;
        self.write(&[0; 3][..len as usize])
    }
}

/// `/init`: mounts, then every test executable with `filters`, then the
/// verdict and a power-off. It does not start a daemon: each test starts
/// its own. `features`: the host's `SUSPEND_FEATURES`, if set (the
/// one-feature suite then runs only those).
pub fn init_script(filters: &[String], features: Option<&str>) -> String {
    // With no filter, a boot runs the suites its kernel matters for: every
    // suite on the newest kernel (7.x); on the older ones, the suites that
    // depend on the kernel (the one-feature workloads, processes moved
    // between kernels, the eBPF registry and guard, resume, security) with
    // the BPF LSM on, and without it the two that depend on the LSM list
    // (the registry, whose guard is then off) or on the boot order (the
    // moved processes: the later boots resume what the others carried).
    // The one-feature workloads do not depend on the LSM list: they run
    // once per kernel. CI stays well under its limit; a filter runs what
    // it names everywhere.
    let partial = if filters.is_empty() { "1" } else { "" };
    let filters: String = filters
        .iter()
        .map(|f| format!(" {}", sh_quote(f)))
        .collect();
    let features = features
        .map(|f| format!("export SUSPEND_FEATURES={}\n", sh_quote(f)))
        .unwrap_or_default();
    format!(
        r#"#!/bin/sh
# /init of a `cargo xtask vm-test` guest.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
try() {{ "$@" || echo "vmtest: \`$*\` failed"; }}
mkdir -p /dev/pts /dev/shm
try mount -t devpts devpts /dev/pts
try mount -t tmpfs -o mode=1777 tmpfs /dev/shm
try mount -t tmpfs -o mode=1777 tmpfs /tmp
try mount -t tmpfs -o mode=0755 tmpfs /run
try mount -t bpf bpf /sys/fs/bpf
try mount -t tracefs tracefs /sys/kernel/tracing
try mount -t debugfs debugfs /sys/kernel/debug
try mount -t securityfs securityfs /sys/kernel/security
try mount -t cgroup2 cgroup2 /sys/fs/cgroup
try ip link set lo up
# Modules a Debian machine would load on demand (the guest has no modprobe).
for module in /lib/modules/$(uname -r)/*.ko; do
    [ -e "$module" ] && try insmod "$module"
done
echo "{UNAME}$(uname -r)"
echo "{LSM}$(cat /sys/kernel/security/lsm)"

export SUSPEND_BIN_DIR={GUEST_BIN} HOME=/root TMPDIR=/tmp
# The host runs the daemon-kill loop in full (200 suspends) and holds a TCP
# connection for 30 s; each guest a round of the loop and a 3 s hold.
export SUSPEND_KILL_LOOP_ROUNDS=1 SUSPEND_LONG_HOLD_S=3 SUSPEND_BIG_HOLD_MIB=128
{features}# Debian's kernels load BPF LSM programs wherever bpf is an active LSM: the
# freeze guard must be on there (the suite cannot assume it elsewhere).
case ",$(cat /sys/kernel/security/lsm)," in
*,bpf,*) export SUSPEND_EXPECT_LSM_GUARD=1 ;;
esac
cd /tmp
status=0
# The console shows errors only (loglevel=4); warnings logged during the
# tests are printed after them.
boot_messages=$(dmesg -r | wc -l)
only=""
if [ -n "{partial}" ]; then
    case "$(uname -r)" in
    7.*) only="" ;;
    *)
        case ",$(cat /sys/kernel/security/lsm)," in
        *,bpf,*) only="features moved registry resume security" ;;
        *) only="moved registry" ;;
        esac
        ;;
    esac
fi
for test in {GUEST_TESTS}/*; do
    name=${{test##*/}}
    if [ -n "$only" ] && ! echo " $only " | grep -q " $name "; then
        echo "vmtest: NOT RUN on this boot (every suite runs on 7.x): $name"
        continue
    fi
    echo "VMTEST_RUN=$name"
    "$test" --include-ignored --test-threads=1{filters}
    rc=$?
    echo "VMTEST_DONE=$name exit=$rc"
    # A failing test prints its own daemon's log.
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then
        status=$rc
    fi
done
dmesg -r | tail -n +$((boot_messages + 1)) | grep '^<4>' | sed 's/^<4>/{KERNEL_WARNING}/'
echo "{VERDICT}$status"
echo "{VERDICT}$status" >/dev/ttyS1
sync
sleep 0.2
poweroff -f
"#
    )
}

/// `word` single-quoted for sh.
fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{Node, Tree, init_script};

    #[test]
    fn parents_come_first_and_entries_are_aligned() {
        let mut tree = Tree::default();
        tree.insert("/usr/bin/b", Node::data(b"abc"));
        tree.insert("/usr-x", Node::Dir);
        tree.insert("/bin/sh", Node::Symlink("/bin/busybox".into()));
        let order: Vec<_> = tree.nodes.keys().cloned().collect();
        let expected: Vec<PathBuf> = [
            "/bin",
            "/bin/sh",
            "/usr",
            "/usr/bin",
            "/usr/bin/b",
            "/usr-x",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(order, expected);

        let dir = std::env::temp_dir().join(format!("xtask-cpio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.cpio");
        let size = tree.write_cpio(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(size % 4, 0);
        assert!(bytes.starts_with(b"070701"));
        // The file's entry: header, "usr/bin/b\0" padded, then its data.
        let at = bytes.windows(10).position(|w| w == b"usr/bin/b\0").unwrap();
        assert_eq!((at - 110) % 4, 0);
        let data = (at + 10).div_ceil(4) * 4;
        assert_eq!(&bytes[data..data + 3], b"abc");
        assert!(bytes.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn filters_are_quoted() {
        let script = init_script(&["a b".into(), "it's".into()], Some("x,y"));
        assert!(script.contains(r#"--test-threads=1 'a b' 'it'\''s'"#));
        // A filter runs what it names on every boot; none, the partition.
        assert!(script.contains("if [ -n \"\" ]; then"));
        assert!(init_script(&[], None).contains("if [ -n \"1\" ]; then"));
        assert!(script.contains("export SUSPEND_FEATURES='x,y'\n"));
        assert!(!init_script(&[], None).contains("SUSPEND_FEATURES"));
    }
}
