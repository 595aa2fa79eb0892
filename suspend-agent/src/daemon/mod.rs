//! The agent daemon: loads the eBPF programs, serves the client socket
//! (registrations, handshakes) and the root-only control socket (the CLI).

mod clients;
mod control_server;
pub mod ebpf;
mod handshake;
mod register;
mod scan;
mod suspend;

use std::{
    collections::HashMap,
    fs, io,
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::Path,
    sync::{Arc, Mutex, atomic::AtomicU64},
};

use anyhow::{Context as _, bail};
use log::{info, warn};
use nix::fcntl::{Flock, FlockArg};
use suspend_common::paths::{CLIENT_SOCKET, CONTROL_SOCKET, LOCK_FILE, RUN_DIR};
use tokio::{
    io::unix::AsyncFd,
    net::UnixListener,
    signal::unix::{SignalKind, signal},
    sync::oneshot,
};

use crate::{
    mounts,
    registry::{Registry, SharedRegistry},
};

/// A client's connection after it said `HELLO`, handed to the handshake
/// waiting for it.
pub struct Hello {
    pub stream: tokio::net::UnixStream,
    pub message: suspend_common::wire::Message,
}

/// State shared by the daemon's tasks.
pub struct State {
    pub registry: SharedRegistry,
    /// Handshakes waiting for their client's `HELLO`, by pid.
    pub pending: Mutex<HashMap<u32, oneshot::Sender<Hello>>>,
    pub next_request_id: AtomicU64,
    /// Whether the freeze guard (BPF LSM) is on.
    pub lsm_guard: bool,
}

impl State {
    /// Runs `f` on the registry.
    pub fn registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        self.registry.with(f)
    }
}

/// Runs the daemon until SIGINT or SIGTERM.
pub fn run() -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "the agent daemon must run as root (it loads eBPF programs and signals other users' processes)"
        );
    }
    for target in mounts::ensure().context("mounting the filesystems the agent needs")? {
        info!("mounted {target}");
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(RUN_DIR)
        .with_context(|| format!("creating {RUN_DIR}"))?;
    // Made 0700 by an older agent's resume or receive before any daemon
    // ran: every user's process must reach the client socket.
    fs::set_permissions(RUN_DIR, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {RUN_DIR} mode 0755"))?;
    let _lock = lock()?;
    raise_fd_limit();
    for dir in crate::image::leftovers::remove() {
        info!(
            "removed {}, a partial image of an agent that was killed",
            dir.display()
        );
    }
    let keys = crate::image::sign::Keys::system().context("the image signing keys")?;
    let key = keys.signing().context("the image signing key")?;
    info!(
        "images are signed with key {} ({})",
        crate::image::sign::key_id(&key.verifying_key()),
        keys.dir().display()
    );

    let (loaded, registry) = ebpf::load()?;
    let state = Arc::new(State {
        registry: SharedRegistry::new(registry),
        pending: Mutex::new(HashMap::new()),
        next_request_id: AtomicU64::new(1),
        lsm_guard: loaded.lsm_guard,
    });
    let report = scan::run(&state);
    info!(
        "registry: {} registered, {} picked up from processes that registered while no agent ran, {} stale removed",
        report.kept, report.picked_up, report.removed
    );

    finish_refills();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let result = runtime.block_on(serve(state, loaded));
    // A dump still running on a blocking thread must not keep the daemon
    // alive; exiting detaches ptrace, so its process is let go.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

/// Held processes resumed lazily whose serving agent was killed: their
/// threads wait for pages no one serves. Each gets a new agent.
fn finish_refills() {
    let records = match crate::hold::HeldRecord::all() {
        Ok(r) => r,
        Err(e) => {
            warn!("reading the held records: {e}");
            return;
        }
    };
    for record in records {
        if record.refill.is_none() || crate::hold::refill::being_served(record.pid) {
            continue;
        }
        match crate::hold::refill::spawn(record.pid) {
            Ok(mut child) => {
                info!(
                    "pid {}: its refill was cut short; pid {} finishes it",
                    record.pid,
                    child.id()
                );
                std::thread::spawn(move || child.wait());
            }
            Err(e) => warn!("pid {}: finishing its refill: {e}", record.pid),
        }
    }
}

/// Takes the daemon lock (`/run/suspend/agent.pid`) and writes our pid.
fn lock() -> anyhow::Result<Flock<fs::File>> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .read(true)
        .open(LOCK_FILE)
        .with_context(|| format!("opening {LOCK_FILE}"))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            let pid = fs::read_to_string(LOCK_FILE).unwrap_or_default();
            bail!(
                "another agent daemon is running (pid {}; lock {LOCK_FILE})",
                pid.trim()
            );
        }
        Err((_, e)) => return Err(e).with_context(|| format!("locking {LOCK_FILE}")),
    };
    use std::io::{Seek as _, Write as _};
    lock.set_len(0)?;
    lock.seek(io::SeekFrom::Start(0))?;
    writeln!(lock, "{}", std::process::id())?;
    Ok(lock)
}

/// Connections one user may hold open on the client socket at once. A
/// client needs one at a time (two while a suspend request crosses a
/// registration); past this, more from that user are closed at once, so
/// no user can use up the daemon's descriptors.
const CONNECTIONS_PER_UID: usize = 64;

/// How long the accept loop rests after a failed `accept` (out of
/// descriptors or memory): the error is logged, never the end of the
/// daemon.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// Open connections per uid.
#[derive(Default)]
struct PerUid(Mutex<HashMap<u32, usize>>);

/// One open connection's place in [`PerUid`], given back when dropped.
struct Slot {
    counts: Arc<PerUid>,
    uid: u32,
}

impl PerUid {
    /// A slot for `uid`, unless it holds `limit` already.
    fn take(self: &Arc<Self>, uid: u32, limit: usize) -> Option<Slot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(uid).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: self.clone(),
            uid,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.uid);
            }
        }
    }
}

/// Accepts connections on `listener` forever, each handled by its own
/// task; at most `per_uid` open at once from one user (root too). A failed
/// `accept` is logged and retried after a pause: nothing a user does to
/// the socket ends the daemon.
async fn serve_each<F, Fut>(
    listener: UnixListener,
    what: &'static str,
    state: Arc<State>,
    per_uid: usize,
    handle: F,
) -> io::Result<()>
where
    F: Fn(tokio::net::UnixStream, Arc<State>) -> Fut,
    Fut: std::future::Future<Output = io::Result<()>> + Send + 'static,
{
    let counts = Arc::new(PerUid::default());
    let mut refused_since_log = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!("{what} socket: accept failed: {e}; retrying");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let uid = match stream.peer_cred() {
            Ok(cred) => cred.uid(),
            Err(e) => {
                log::debug!("{what} connection: no peer credentials: {e}");
                continue;
            }
        };
        let Some(slot) = counts.take(uid, per_uid) else {
            refused_since_log += 1;
            if refused_since_log.is_power_of_two() {
                warn!(
                    "{what} socket: uid {uid} holds {per_uid} connections already; closed \
                     {refused_since_log} more so far"
                );
            }
            continue;
        };
        let connection = handle(stream, state.clone());
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                log::debug!("{what} connection: {e}");
            }
        });
    }
}

/// Raises the soft limit on open descriptors to the hard one: each client
/// connection is one.
fn raise_fd_limit() {
    use crate::sys::process::{rlimit, set_rlimit};
    if let Ok((soft, hard)) = rlimit(libc::RLIMIT_NOFILE)
        && soft < hard
        && set_rlimit(libc::RLIMIT_NOFILE, hard, hard).is_ok()
    {
        info!("open descriptor limit raised to {hard}");
    }
}

/// Binds a listening socket at `path` with `mode`, replacing a stale one
/// (we hold the lock, so nobody else serves it).
fn bind(path: &str, mode: u32) -> anyhow::Result<UnixListener> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing stale {path}")),
    }
    let listener = UnixListener::bind(path).with_context(|| format!("binding {path}"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {path}"))?;
    Ok(listener)
}

async fn serve(state: Arc<State>, mut loaded: ebpf::Loaded) -> anyhow::Result<()> {
    let clients = bind(CLIENT_SOCKET, 0o666)?;
    let control = bind(CONTROL_SOCKET, 0o600)?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    info!("listening on {CLIENT_SOCKET} (clients) and {CONTROL_SOCKET} (control)");

    let logs = loaded.logger.take().map(|logger| {
        tokio::spawn(async move {
            // SAFETY: the logger owns its ring buffer's fd and keeps it open
            // and unchanged for as long as it lives inside the AsyncFd.
            let Ok(mut fd) = (unsafe { AsyncFd::register(logger) }) else {
                return;
            };
            loop {
                let Ok(mut guard) = fd.readable_mut().await else {
                    return;
                };
                guard.get_inner_mut().flush();
                guard.clear_ready();
            }
        })
    });

    let result = tokio::select! {
        r = serve_each(clients, "client", state.clone(), CONNECTIONS_PER_UID, clients::handle) => r.context("client socket"),
        // Root only (0600): no limit of its own.
        r = serve_each(control, "control", state.clone(), usize::MAX, control_server::handle) => r.context("control socket"),
        _ = sigterm.recv() => { info!("SIGTERM: stopping"); Ok(()) }
        _ = sigint.recv() => { info!("SIGINT: stopping"); Ok(()) }
    };
    if let Some(logs) = logs {
        logs.abort();
    }
    for path in [CLIENT_SOCKET, CONTROL_SOCKET] {
        if let Err(e) = fs::remove_file(Path::new(path)) {
            warn!("removing {path}: {e}");
        }
    }
    // The maps and links stay pinned: registrations stay true while no
    // agent runs, and the next one picks them up.
    drop(loaded);
    result
}
