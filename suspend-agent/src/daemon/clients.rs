//! The client socket (`/run/suspend/client.sock`, mode 0666): clients
//! register, unregister, and answer suspend signals here. Who is talking is
//! taken from `SO_PEERCRED`, never from the message, and held by a pidfd
//! taken at connect (`SO_PEERPIDFD`): a client that exits frees its pid for
//! another process, and the agent must not then read that one's memory on
//! the client's word.

use std::{io, os::fd::AsFd as _, sync::Arc, time::Duration};

use log::{debug, info, warn};
use suspend_common::{
    ABI_VERSION,
    registry::context_name,
    wire::{
        ERROR_ABI, ERROR_BAD_BLOCK, ERROR_INTERNAL, ERROR_NO_REQUEST, ERROR_PROTOCOL, MSG_ERROR,
        MSG_HELLO, MSG_OK, MSG_REGISTER, MSG_REGISTERED, MSG_UNREGISTER, Message,
    },
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::UnixStream,
    time::timeout,
};

use super::{
    Hello, State,
    register::{self, RegisterError},
};
use crate::{procfs, sys::PidFd};

/// How long a client has to send its first message.
const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads one message; `None` at end of file.
pub async fn read_message(stream: &mut UnixStream) -> io::Result<Option<Message>> {
    let mut buf = [0u8; size_of::<Message>()];
    match stream.read_exact(&mut buf).await {
        Ok(_) => Ok(Message::from_bytes(&buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes one message.
pub async fn write_message(stream: &mut UnixStream, message: &Message) -> io::Result<()> {
    stream.write_all(message.as_bytes()).await
}

fn error_message(code: u32) -> Message {
    Message {
        code,
        ..Message::new(MSG_ERROR)
    }
}

/// The connected process, held so its pid cannot come to mean another:
/// its pidfd from connect time where the kernel has `SO_PEERPIDFD` (6.5+),
/// else one opened now and accepted only if that process is the peer's
/// user.
fn peer(stream: &UnixStream, pid: u32, uid: u32) -> io::Result<PidFd> {
    if let Some(peer) = PidFd::of_peer(stream.as_fd())? {
        return Ok(peer);
    }
    let peer = PidFd::open(pid)?;
    let owner = procfs::status(pid).map_err(io::Error::other)?.uid;
    if owner != uid {
        return Err(io::Error::other(format!(
            "pid {pid} is uid {owner}'s, the peer was uid {uid}: the client exited and its pid \
             was taken"
        )));
    }
    Ok(peer)
}

pub async fn handle(mut stream: UnixStream, state: Arc<State>) -> io::Result<()> {
    let cred = stream.peer_cred()?;
    let Some(pid) = cred.pid().and_then(|p| u32::try_from(p).ok()) else {
        return Err(io::Error::other("peer has no pid (another pid namespace?)"));
    };
    let message = match timeout(FIRST_MESSAGE_TIMEOUT, read_message(&mut stream)).await {
        Ok(Ok(Some(message))) => message,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(io::Error::other(format!(
                "pid {pid}: no message in {FIRST_MESSAGE_TIMEOUT:?}"
            )));
        }
    };
    if message.abi_version != ABI_VERSION {
        warn!(
            "pid {pid}: client ABI version {} (agent has {ABI_VERSION}); refused",
            message.abi_version
        );
        return write_message(&mut stream, &error_message(ERROR_ABI)).await;
    }
    match message.kind {
        MSG_REGISTER => {
            // The pid is the peer's while the pidfd's process lives: before
            // its memory is read, and after.
            let peer = peer(&stream, pid, cred.uid())?;
            let alive = |when: &str| {
                if peer.is_alive() {
                    Ok(())
                } else {
                    Err(io::Error::other(format!(
                        "pid {pid}: the client exited {when} registering; refused"
                    )))
                }
            };
            alive("before")?;
            let entry = register::entry_for(pid, message.block_addr);
            alive("while")?;
            let reply =
                match entry.and_then(|reg| Ok(state.registry(|r| r.insert(&reg)).map(|()| reg)?)) {
                    Ok(reg) => {
                        info!(
                            "pid {pid} (uid {}) registered: signals {}/{}, {} context",
                            reg.uid,
                            reg.suspend_signal,
                            reg.resume_signal,
                            context_name(reg.context)
                        );
                        Message::new(MSG_REGISTERED)
                    }
                    Err(e) => {
                        warn!("registration refused: {e}");
                        error_message(match e {
                            RegisterError::Registry(_) => ERROR_INTERNAL,
                            RegisterError::Abi { .. } => ERROR_ABI,
                            _ => ERROR_BAD_BLOCK,
                        })
                    }
                };
            write_message(&mut stream, &reply).await
        }
        MSG_UNREGISTER => {
            let reply = match state.registry(|r| r.remove(pid)) {
                Ok(()) => {
                    info!("pid {pid} unregistered");
                    Message::new(MSG_OK)
                }
                Err(e) => {
                    warn!("{e}");
                    error_message(ERROR_INTERNAL)
                }
            };
            write_message(&mut stream, &reply).await
        }
        MSG_HELLO => {
            let waiting = state
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pid);
            match waiting {
                Some(tx) => {
                    if let Err(Hello { mut stream, .. }) = tx.send(Hello { stream, message }) {
                        // The handshake gave up (timeout) just now.
                        write_message(&mut stream, &error_message(ERROR_NO_REQUEST)).await?;
                    }
                    Ok(())
                }
                None => {
                    debug!("pid {pid}: HELLO with no request waiting");
                    write_message(&mut stream, &error_message(ERROR_NO_REQUEST)).await
                }
            }
        }
        kind => {
            warn!("pid {pid}: unexpected first message kind {kind}");
            write_message(&mut stream, &error_message(ERROR_PROTOCOL)).await
        }
    }
}
