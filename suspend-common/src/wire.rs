//! Messages between a client and the agent on [`crate::paths::CLIENT_SOCKET`]
//! (`SOCK_STREAM`: each message is read whole, `size_of::<Message>()`
//! bytes at a time).
//!
//! Every message is a fixed-size [`Message`], so the client can send and
//! receive them from inside a signal handler without allocating. The agent
//! knows who is talking from `SO_PEERCRED`, never from the message.
//!
//! Registration: client → `REGISTER` (with `block_addr`), agent →
//! `REGISTERED` or `ERROR`.
//!
//! Suspend handshake, after the agent's suspend signal:
//! 1. client → `HELLO` (with the token),
//! 2. agent → `REQUEST` (id, flags, timeout),
//! 3. client → `ANSWER` with a decision. `HELD` means "inside a critical
//!    section, will answer when it ends" and is followed by another `ANSWER`.
//! 4. After `READY` the client waits on the same connection for `OUTCOME`
//!    (`CONTINUED`, `ABORTED`); end of file means `ABORTED`. Once its
//!    `on_resume` has run it sends `OK`. A process suspended for good is
//!    killed while it waits.

/// `REGISTER`: client announces its block.
pub const MSG_REGISTER: u32 = 1;
/// `REGISTERED`: agent accepted the registration.
pub const MSG_REGISTERED: u32 = 2;
/// `UNREGISTER`: client withdraws.
pub const MSG_UNREGISTER: u32 = 3;
/// `HELLO`: client answers a suspend signal.
pub const MSG_HELLO: u32 = 4;
/// `REQUEST`: agent tells the client what is asked.
pub const MSG_REQUEST: u32 = 5;
/// `ANSWER`: client's decision.
pub const MSG_ANSWER: u32 = 6;
/// `OUTCOME`: how a suspension the client agreed to ended.
pub const MSG_OUTCOME: u32 = 7;
/// `ERROR`: the agent refused the message; `code` says why.
pub const MSG_ERROR: u32 = 8;
/// `OK`: generic acknowledgement.
pub const MSG_OK: u32 = 9;

/// Decision: suspend me now.
pub const DECISION_READY: u32 = 0;
/// Decision: not now, try again later.
pub const DECISION_BUSY: u32 = 1;
/// Decision: do not suspend me.
pub const DECISION_REFUSE: u32 = 2;
/// Decision (protocol only): inside a critical section and the requester
/// asked to wait; the real decision follows when the last section ends.
pub const DECISION_HELD: u32 = 3;

/// `ANSWER` detail: `BUSY` because a critical section was active.
pub const DETAIL_CRITICAL_SECTION: u32 = 1;

/// Resume reason: restored from an image.
pub const REASON_RESTORED: u32 = 0;
/// Resume reason: checkpointed (or dry run) without stopping; carry on.
pub const REASON_CONTINUED: u32 = 1;
/// Resume reason: the suspension failed after `READY`; carry on.
pub const REASON_ABORTED: u32 = 2;

/// Request flag: the requester waits for critical sections to end.
pub const REQUEST_WAIT: u32 = 1 << 0;
/// Request flag: a dry run (handshake only; nothing is frozen or written).
pub const REQUEST_DRY_RUN: u32 = 1 << 1;
/// Request flag: the process is to keep running after the image is written.
pub const REQUEST_LEAVE_RUNNING: u32 = 1 << 2;

/// `ERROR` code: the message's ABI version is not the agent's.
pub const ERROR_ABI: u32 = 1;
/// `ERROR` code: the block could not be read or did not match.
pub const ERROR_BAD_BLOCK: u32 = 2;
/// `ERROR` code: no suspend request is waiting for this process.
pub const ERROR_NO_REQUEST: u32 = 3;
/// `ERROR` code: the token did not match.
pub const ERROR_TOKEN: u32 = 4;
/// `ERROR` code: the message was malformed or unexpected here.
pub const ERROR_PROTOCOL: u32 = 5;
/// `ERROR` code: the registry is full or the map could not be written.
pub const ERROR_INTERNAL: u32 = 6;

/// One message on the client socket. Fields a kind does not use are zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// One of the `MSG_*` constants.
    pub kind: u32,
    /// [`crate::ABI_VERSION`] of the sender.
    pub abi_version: u32,
    /// `REQUEST`: request id; `ANSWER`/`OUTCOME`: the id they answer.
    pub request_id: u64,
    /// `HELLO`: the registration token.
    pub token: u64,
    /// `REGISTER`: address of the client's block.
    pub block_addr: u64,
    /// `ANSWER`: a `DECISION_*`; `OUTCOME`: a `REASON_*`; `ERROR`: an
    /// `ERROR_*`.
    pub code: u32,
    /// `REQUEST`: `REQUEST_*` flags; `ANSWER`: a `DETAIL_*`.
    pub flags: u32,
    /// `REQUEST`: how long the requester waits in all, in milliseconds.
    pub timeout_ms: u32,
    /// `ANSWER`: the client's own fd of this connection (not part of its
    /// state: the agent leaves it out of the image).
    pub fd: u32,
}

const _: () = assert!(core::mem::size_of::<Message>() == 48);

impl Message {
    /// A message of `kind` with every other field zero.
    pub const fn new(kind: u32) -> Self {
        Self {
            kind,
            abi_version: crate::ABI_VERSION,
            request_id: 0,
            token: 0,
            block_addr: 0,
            code: 0,
            flags: 0,
            timeout_ms: 0,
            fd: 0,
        }
    }

    /// The message as bytes, for `send(2)`.
    pub fn as_bytes(&self) -> &[u8; core::mem::size_of::<Message>()] {
        // SAFETY: `Message` is `repr(C)` with no padding (size asserted), so
        // all of its bytes are initialised, and the array has its size.
        unsafe { &*(self as *const Self).cast() }
    }

    /// Reads a message from exactly `size_of::<Message>()` received bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != core::mem::size_of::<Message>() {
            return None;
        }
        // SAFETY: the length was checked; every bit pattern is a valid
        // `Message`; `read_unaligned` has no alignment requirement.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<Message>()) })
    }
}

/// Human name of a `DECISION_*` value.
pub const fn decision_name(decision: u32) -> &'static str {
    match decision {
        DECISION_READY => "ready",
        DECISION_BUSY => "busy",
        DECISION_REFUSE => "refuse",
        DECISION_HELD => "held",
        _ => "unknown",
    }
}

/// Human name of a `REASON_*` value.
pub const fn reason_name(reason: u32) -> &'static str {
    match reason {
        REASON_RESTORED => "restored",
        REASON_CONTINUED => "continued",
        REASON_ABORTED => "aborted",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trips_through_bytes() {
        let m = Message {
            request_id: 0x0102_0304_0506_0708,
            token: u64::MAX - 1,
            block_addr: 0x7f00_dead_b000,
            code: DECISION_HELD,
            flags: REQUEST_WAIT | REQUEST_DRY_RUN,
            timeout_ms: 5000,
            ..Message::new(MSG_ANSWER)
        };
        assert_eq!(Message::from_bytes(m.as_bytes()), Some(m));
        assert_eq!(m.abi_version, crate::ABI_VERSION);
    }

    #[test]
    fn short_or_long_input_is_refused() {
        let m = Message::new(MSG_HELLO);
        assert_eq!(Message::from_bytes(&m.as_bytes()[..47]), None);
        assert_eq!(Message::from_bytes(&[0u8; 49]), None);
        assert_eq!(Message::from_bytes(&[]), None);
    }
}
