//! The guest kernels: Debian's own cloud-flavour packages (virtio and the
//! serial console built in), resolved to a concrete package, downloaded
//! once into the cache, and described by their `config` file; with the few
//! modules the suite needs ([`MODULES`]), which a Debian machine loads on
//! demand through `modprobe` and a guest `insmod`s at boot. Also the boot
//! variants each kernel runs in.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, anyhow, bail};

use super::debian::{self, Apt};
use crate::util;

/// Modules the guests load at boot. `unix_diag`: the agent asks
/// `NETLINK_SOCK_DIAG` about a process's unix sockets (Debian builds it as
/// a module, `CONFIG_UNIX_DIAG=m`; its own machines autoload it).
pub const MODULES: &[&str] = &["unix_diag"];

/// Bumped when a cached kernel directory's contents change, so an older
/// cache is filled again rather than read as complete.
const CACHE_LAYOUT: u32 = 2;

/// A kernel series the suite runs on.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Series {
    /// Debian 12's kernel (bookworm).
    V6_1,
    /// The 6.12 kernel bookworm-security carries.
    V6_12,
    /// The newest 7.x of trixie-backports.
    V7,
}

impl Series {
    pub const ALL: [Self; 3] = [Self::V6_1, Self::V6_12, Self::V7];

    /// The name used on the command line and in file names.
    pub fn key(self) -> &'static str {
        match self {
            Self::V6_1 => "6.1",
            Self::V6_12 => "6.12",
            Self::V7 => "7",
        }
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A kernel ready to boot.
pub struct Kernel {
    pub series: Series,
    /// The package holding the image, and its version.
    pub package: String,
    pub version: String,
    /// `uname -r` of the kernel, e.g. `6.12.117+deb12-cloud-amd64`.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// The kernel's build configuration (`/boot/config-<release>`).
    pub config_path: PathBuf,
    pub config: Config,
    /// The [`MODULES`] the package has, uncompressed.
    pub modules: Vec<PathBuf>,
}

/// What the suite cares about in a kernel's build configuration.
#[derive(Debug, PartialEq, Eq)]
pub struct Config {
    /// `CONFIG_DEBUG_INFO_BTF=y`.
    pub btf: bool,
    /// `CONFIG_BPF_LSM=y`.
    pub bpf_lsm: bool,
    /// The default LSM list, `CONFIG_LSM`.
    pub lsm: Vec<String>,
}

impl Config {
    pub fn parse(text: &str) -> Self {
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(|value| value.trim_matches('"'))
        };
        Self {
            btf: value("CONFIG_DEBUG_INFO_BTF") == Some("y"),
            bpf_lsm: value("CONFIG_BPF_LSM") == Some("y"),
            lsm: value("CONFIG_LSM")
                .unwrap_or_default()
                .split(',')
                .filter(|lsm| !lsm.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// Whether the default LSM list has `bpf`.
    pub fn default_has_bpf(&self) -> bool {
        self.lsm.iter().any(|lsm| lsm == "bpf")
    }
}

/// One boot of a kernel.
pub struct Variant {
    /// `lsm`, `nolsm` or `default`.
    pub name: &'static str,
    /// The `lsm=` kernel parameter, if the default list is not used.
    pub lsm_param: Option<String>,
    /// Whether `bpf` must then be in `/sys/kernel/security/lsm`.
    pub expect_bpf_lsm: bool,
}

impl Kernel {
    /// 6.1 and 6.12 boot twice, with the BPF LSM in the LSM list and
    /// without; 7.x boots once, with its default list.
    pub fn variants(&self) -> Vec<Variant> {
        if self.series == Series::V7 {
            return vec![Variant {
                name: "default",
                lsm_param: None,
                expect_bpf_lsm: self.config.bpf_lsm && self.config.default_has_bpf(),
            }];
        }
        let without: Vec<_> = self
            .config
            .lsm
            .iter()
            .filter(|lsm| *lsm != "bpf")
            .cloned()
            .collect();
        let mut variants = Vec::new();
        if self.config.bpf_lsm {
            let mut with = self.config.lsm.clone();
            if !self.config.default_has_bpf() {
                with.push("bpf".into());
            }
            variants.push(Variant {
                name: "lsm",
                lsm_param: Some(with.join(",")),
                expect_bpf_lsm: true,
            });
        } else {
            println!(
                "vmtest: kernel {}: CONFIG_BPF_LSM is not set, so it boots only without the BPF LSM",
                self.series
            );
        }
        variants.push(Variant {
            name: "nolsm",
            lsm_param: Some(without.join(",")),
            expect_bpf_lsm: false,
        });
        variants
    }

    /// One line: which package, and the features the suite needs.
    pub fn summary(&self) -> String {
        let yes_no = |b: bool| if b { "yes" } else { "NO" };
        format!(
            "kernel {}: {} ({} {}): BTF {}, BPF_LSM {}, default CONFIG_LSM {} bpf ({})",
            self.series,
            self.release,
            self.package,
            self.version,
            yes_no(self.config.btf),
            yes_no(self.config.bpf_lsm),
            if self.config.default_has_bpf() {
                "includes"
            } else {
                "LACKS"
            },
            self.config.lsm.join(","),
        )
    }
}

/// Resolves the current package of `series`, downloads and unpacks it into
/// the cache unless it is there, and reads its configuration.
pub fn fetch(cache: &Path, series: Series) -> Result<Kernel> {
    let (apt, packages) = match series {
        Series::V6_1 | Series::V6_12 => {
            let apt = Apt::system();
            let meta = if series == Series::V6_1 {
                "linux-image-cloud-amd64"
            } else {
                "linux-image-6.12-cloud-amd64"
            };
            let image = apt.image_of(meta)?;
            (apt, vec![format!("{image}-unsigned")])
        }
        Series::V7 => {
            let apt = Apt::private(cache, "trixie-backports")?;
            let abi = newest_7(&apt)?;
            // The image is split: vmlinuz in linux-binary-unsigned-*, the
            // config in linux-base-*, the modules in linux-modules-*.
            let packages = vec![
                format!("linux-binary-unsigned-{abi}-cloud-amd64"),
                format!("linux-base-{abi}-cloud-amd64"),
                format!("linux-modules-{abi}-cloud-amd64"),
            ];
            (apt, packages)
        }
    };
    let package = packages[0].clone();
    let version = apt.version(&package)?;
    let dir = cache
        .join("kernels")
        .join(format!("{package}_{version}_{CACHE_LAYOUT}").replace(['/', ':'], "_"));
    if !dir.is_dir() {
        println!("vmtest: kernel {series}: downloading {package} {version}");
    }
    debian::cached(&dir, |partial| unpack(&apt, &packages, partial))?;
    let release = fs::read_to_string(dir.join("release"))
        .with_context(|| format!("reading {}/release", dir.display()))?
        .trim()
        .to_owned();
    let config_path = dir.join("config");
    let config = Config::parse(
        &fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    );
    let modules = MODULES
        .iter()
        .map(|module| dir.join("modules").join(format!("{module}.ko")))
        .filter(|path| path.is_file())
        .collect();
    Ok(Kernel {
        series,
        package,
        version,
        release,
        vmlinuz: dir.join("vmlinuz"),
        config_path,
        config,
        modules,
    })
}

/// Downloads and unpacks `packages`, keeping `vmlinuz`, `config`,
/// `release` (the `uname -r` string) and `modules/NAME.ko` (each of
/// [`MODULES`] the packages have, uncompressed) in `dir`.
fn unpack(apt: &Apt, packages: &[String], dir: &Path) -> Result<()> {
    let tree = dir.join("unpacked");
    apt.fetch(packages, &tree)?;
    let files = debian::files_under(&tree)?;
    let name = |path: &Path| {
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let vmlinuz = files
        .iter()
        .find(|path| name(path).starts_with("vmlinuz"))
        .ok_or_else(|| anyhow!("no vmlinuz* in {}", packages.join(" ")))?;
    // boot/config-<release> (6.x), or usr/lib/modules/<release>/config (7.x).
    let (config, release) = files
        .iter()
        .find_map(|path| {
            let file = name(path);
            let parent = path.parent()?;
            if let Some(release) = file.strip_prefix("config-") {
                return (parent.file_name()? == "boot").then(|| (path, release.to_owned()));
            }
            let in_modules = parent.parent()?.file_name()? == "modules";
            (file == "config" && in_modules).then(|| (path, name(parent)))
        })
        .ok_or_else(|| anyhow!("no kernel config in {}", packages.join(" ")))?;
    for (from, to) in [(vmlinuz, "vmlinuz"), (config, "config")] {
        fs::copy(from, dir.join(to))
            .with_context(|| format!("copying {} into {}", from.display(), dir.display()))?;
    }
    fs::write(dir.join("release"), format!("{release}\n"))?;
    let modules = dir.join("modules");
    fs::create_dir_all(&modules).with_context(|| format!("creating {}", modules.display()))?;
    for module in MODULES {
        let Some((path, compression)) = files.iter().find_map(|path| {
            let file = name(path);
            let rest = file.strip_prefix(module)?.strip_prefix(".ko")?;
            Some((path, rest.to_owned()))
        }) else {
            println!("vmtest: warning: no {module}.ko in {}", packages.join(" "));
            continue;
        };
        let bytes = match compression.as_str() {
            "" => fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            ".xz" => util::output_bytes(Command::new("xz").arg("-dc").arg(path))?,
            ".zst" => util::output_bytes(Command::new("zstd").arg("-dc").arg(path))?,
            other => bail!("{}: unknown module compression {other}", path.display()),
        };
        fs::write(modules.join(format!("{module}.ko")), bytes)?;
    }
    fs::remove_dir_all(&tree).with_context(|| format!("removing {}", tree.display()))
}

/// The ABI name (`7.3.4+deb13`) of the newest 7.x cloud kernel.
fn newest_7(apt: &Apt) -> Result<String> {
    const PREFIX: &str = "linux-binary-unsigned-7.";
    const SUFFIX: &str = "-cloud-amd64";
    let names = apt.names(PREFIX)?;
    let abis = names.iter().filter_map(|name| {
        let abi = name
            .strip_prefix("linux-binary-unsigned-")?
            .strip_suffix(SUFFIX)?;
        // Only `7.3.4+deb13`, not `7.3.4+deb13-rt` (its suffix differs anyway).
        abi.contains('+').then_some(abi)
    });
    let Some(newest) = abis.max_by_key(|abi| numeric_version(abi)) else {
        bail!("{} has no {PREFIX}*{SUFFIX} package", apt.name);
    };
    Ok(newest.to_owned())
}

/// `7.3.4+deb13` → `[7, 3, 4]`, for ordering.
fn numeric_version(abi: &str) -> Vec<u64> {
    abi.split('+')
        .next()
        .unwrap_or_default()
        .split('.')
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Config, numeric_version};

    #[test]
    fn reads_the_lsm_features() {
        let config = Config::parse(
            "#\n# Linux/x86 6.1.192 Kernel Configuration\nCONFIG_DEBUG_INFO_BTF=y\n\
             CONFIG_BPF_LSM=y\n# CONFIG_BPF_LSM_X is not set\n\
             CONFIG_LSM=\"landlock,lockdown,yama,apparmor,tomoyo,bpf\"\n",
        );
        assert!(config.btf && config.bpf_lsm && config.default_has_bpf());
        assert_eq!(config.lsm.len(), 6);
        let none = Config::parse("# CONFIG_BPF_LSM is not set\nCONFIG_LSM=\"yama\"\n");
        assert!(!none.btf && !none.bpf_lsm && !none.default_has_bpf());
    }

    #[test]
    fn orders_versions_numerically() {
        assert!(numeric_version("7.3.4+deb13") > numeric_version("7.2.12+deb13"));
        assert!(numeric_version("7.10.1+deb13") > numeric_version("7.9.9+deb13"));
    }
}
