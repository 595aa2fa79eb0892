//! Paths the agent, the CLI and the clients agree on.

/// Runtime directory of the agent (sockets, lock file).
pub const RUN_DIR: &str = "/run/suspend";
/// Socket clients connect to (registration, answers); mode 0666.
pub const CLIENT_SOCKET: &str = "/run/suspend/client.sock";
/// NUL-terminated [`CLIENT_SOCKET`], for the client's raw `connect(2)`.
pub const CLIENT_SOCKET_C: &[u8] = b"/run/suspend/client.sock\0";
/// Root-only control socket the CLI talks to; mode 0600.
pub const CONTROL_SOCKET: &str = "/run/suspend/control.sock";
/// Lock file that keeps a second daemon from starting; holds its pid.
pub const LOCK_FILE: &str = "/run/suspend/agent.pid";
/// Where the eBPF maps and links are pinned.
pub const BPF_PIN_DIR: &str = "/sys/fs/bpf/suspend";
/// Name of the memfd that holds a client's [`crate::client_block::ClientBlock`];
/// it shows in `/proc/PID/maps` as `/memfd:suspend-client (deleted)`.
pub const CLIENT_MEMFD_NAME: &str = "suspend-client";
/// NUL-terminated [`CLIENT_MEMFD_NAME`].
pub const CLIENT_MEMFD_NAME_C: &[u8] = b"suspend-client\0";
/// Environment variable set by `suspend-agent run` to its own pid: the
/// preload shim registers the process with that pid (the program `run`
/// execs) with default handlers, and no other.
pub const PRELOAD_ENV: &str = "SUSPEND_PRELOAD";

/// `S,R`: the suspend and resume signals the preload shim registers with
/// (`suspend-agent run --signals S,R`); the defaults without it.
pub const PRELOAD_SIGNALS_ENV: &str = "SUSPEND_PRELOAD_SIGNALS";
