//! Debian packages fetched for the guests (kernels, busybox), never
//! installed: `apt-get download` into a cache outside the clone, then
//! `dpkg-deb -x`. Suites the system does not configure are read through a
//! private apt state directory, so the system's apt configuration is never
//! touched.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::util;

/// The cache: `${XDG_CACHE_HOME:-$HOME/.cache}/suspend/vmtest`. It lives
/// outside the clone so that a CI runner (or a second clone) reuses it.
pub fn cache_dir() -> Result<PathBuf> {
    let base = match env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| PathBuf::from(home).join(".cache"))
            .ok_or_else(|| anyhow!("neither XDG_CACHE_HOME nor HOME is set"))?,
    };
    Ok(base.join("suspend/vmtest"))
}

/// How apt is called: with the system's sources, or with a private state
/// directory holding one extra suite.
pub struct Apt {
    /// `-o Dir::…` options; empty for the system's configuration.
    options: Vec<String>,
    /// What to call it in messages: `the system's apt`, `trixie-backports`.
    pub name: String,
}

impl Apt {
    /// The system's apt, as configured.
    pub fn system() -> Self {
        Self {
            options: Vec::new(),
            name: "the system's apt sources".into(),
        }
    }

    /// apt reading only `suite` of deb.debian.org, with its lists and
    /// archives under `<cache>/apt-<suite>`. Updates the lists (a failure,
    /// e.g. offline, is only a warning while older lists exist).
    pub fn private(cache: &Path, suite: &str) -> Result<Self> {
        let state = cache.join(format!("apt-{suite}"));
        for dir in ["lists/partial", "cache/archives/partial", "sources.list.d"] {
            let dir = state.join(dir);
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let sources = state.join("sources.list");
        fs::write(
            &sources,
            format!(
                "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
                 http://deb.debian.org/debian {suite} main\n"
            ),
        )
        .with_context(|| format!("writing {}", sources.display()))?;
        let dir = |key: &str, path: PathBuf| format!("{key}={}", path.display());
        let options = [
            dir("Dir::Etc::sourcelist", sources),
            dir("Dir::Etc::sourceparts", state.join("sources.list.d")),
            dir("Dir::State::lists", state.join("lists")),
            dir("Dir::Cache", state.join("cache")),
        ]
        .into_iter()
        .flat_map(|option| ["-o".to_owned(), option])
        .collect();
        let apt = Self {
            options,
            name: suite.to_owned(),
        };
        let mut update = apt.command("apt-get");
        update.args(["-q", "update"]);
        println!("  $ {}", util::display(&update));
        if let Err(error) = util::output(&mut update) {
            let has_lists = fs::read_dir(state.join("lists"))?
                .flatten()
                .any(|entry| entry.file_name().to_string_lossy().contains("Packages"));
            if !has_lists {
                return Err(error.context(format!("cannot read the {suite} index")));
            }
            println!(
                "vmtest: warning: updating the {suite} index failed, using the old one: {error:#}"
            );
        }
        Ok(apt)
    }

    /// `apt-get` or `apt-cache` with this apt's options.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(&self.options);
        cmd
    }

    /// The candidate version of `package`, or an error naming the sources.
    pub fn version(&self, package: &str) -> Result<String> {
        let show = util::output(
            self.command("apt-cache")
                .args(["show", "--no-all-versions"])
                .arg(package),
        )
        .with_context(|| format!("{package} is not known to {}", self.name))?;
        show.lines()
            .find_map(|line| line.strip_prefix("Version:"))
            .map(|version| version.trim().to_owned())
            .ok_or_else(|| anyhow!("`apt-cache show {package}` names no version"))
    }

    /// The first `linux-image-…` a metapackage depends on.
    pub fn image_of(&self, meta: &str) -> Result<String> {
        let depends = util::output(self.command("apt-cache").args(["depends", meta]))
            .with_context(|| format!("{meta} is not known to {}", self.name))?;
        depends
            .lines()
            .filter_map(|line| line.trim().strip_prefix("Depends:"))
            .map(str::trim)
            .find(|name| name.starts_with("linux-image-"))
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("{meta} depends on no linux-image-* package"))
    }

    /// Package names starting with `prefix`.
    pub fn names(&self, prefix: &str) -> Result<Vec<String>> {
        let names = util::output(self.command("apt-cache").args(["pkgnames", prefix]))?;
        Ok(names.lines().map(str::to_owned).collect())
    }

    /// Downloads `packages` and unpacks them all into `into` (created; an
    /// old one is replaced). The .deb files are removed afterwards.
    pub fn fetch(&self, packages: &[String], into: &Path) -> Result<()> {
        let debs = with_suffix(into, ".debs");
        for dir in [into, debs.as_path()] {
            if dir.exists() {
                fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
            }
        }
        fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
        util::run(
            self.command("apt-get")
                .current_dir(&debs)
                // As root apt would drop to `_apt`, which cannot write here.
                .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
                .args(packages),
        )
        .with_context(|| format!("downloading {} failed", packages.join(" ")))?;
        let mut found = 0;
        for entry in fs::read_dir(&debs)? {
            let deb = entry?.path();
            if deb.extension().is_some_and(|ext| ext == "deb") {
                util::output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(into))
                    .with_context(|| format!("unpacking {}", deb.display()))?;
                found += 1;
            }
        }
        if found != packages.len() {
            bail!(
                "apt-get download left {found} .deb files in {} for {} packages",
                debs.display(),
                packages.len()
            );
        }
        fs::remove_dir_all(&debs).with_context(|| format!("removing {}", debs.display()))?;
        Ok(())
    }
}

/// Every regular file under `dir`, recursively (symlinks not followed).
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Makes `dir` from `fill`, atomically: `fill` writes into `<dir>.partial`,
/// which is renamed once it succeeds. An existing `dir` is kept as is.
pub fn cached(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let partial = with_suffix(dir, ".partial");
    if partial.exists() {
        fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
    }
    fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    fill(&partial)?;
    fs::rename(&partial, dir)
        .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))
}

/// `path` with `suffix` appended to its last component (`with_extension`
/// would cut version numbers at their last dot).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
