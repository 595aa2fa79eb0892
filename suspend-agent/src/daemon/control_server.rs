//! The control socket (`/run/suspend/control.sock`, mode 0600, root only):
//! the CLI sends one JSON request line and reads JSON event lines back.

use std::{io, sync::Arc, time::Duration};

use log::warn;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixStream, unix::OwnedWriteHalf},
    sync::mpsc,
};

use super::{
    State,
    handshake::{self, SuspendArgs},
};
use crate::control::{Event, Outcome, Request};

async fn send(writer: &mut OwnedWriteHalf, event: &Event) -> io::Result<()> {
    let mut line = serde_json::to_string(event).map_err(io::Error::other)?;
    line.push('\n');
    writer.write_all(line.as_bytes()).await
}

pub async fn handle(stream: UnixStream, state: Arc<State>) -> io::Result<()> {
    let cred = stream.peer_cred()?;
    let (reader, mut writer) = stream.into_split();
    if cred.uid() != 0 {
        warn!("control socket: refused uid {}", cred.uid());
        let refused = Event::Result {
            outcome: Outcome::Error,
            message: "the control socket is for root only".into(),
        };
        return send(&mut writer, &refused).await;
    }
    let mut line = String::new();
    BufReader::new(reader).read_line(&mut line).await?;
    let request: Request = match serde_json::from_str(&line) {
        Ok(request) => request,
        Err(e) => {
            let bad = Event::Result {
                outcome: Outcome::Error,
                message: format!("bad request: {e}"),
            };
            return send(&mut writer, &bad).await;
        }
    };
    match request {
        Request::Ping => {
            send(
                &mut writer,
                &Event::Result {
                    outcome: Outcome::Done,
                    message: "pong".into(),
                },
            )
            .await
        }
        Request::Suspend {
            pid,
            timeout_ms,
            wait,
            dry_run,
            dir,
            leave_running,
            drop_unsupported_fds,
            hold,
            new_session,
            unlinked_max,
            no_compress,
            no_precopy,
            portable,
            carry,
        } => {
            let args = SuspendArgs {
                pid,
                timeout: Duration::from_millis(timeout_ms),
                wait,
                dry_run,
                dir,
                leave_running,
                drop_unsupported_fds,
                hold,
                new_session,
                unlinked_max: unlinked_max
                    .unwrap_or(crate::image::format::UNLINKED_MAX_DEFAULT)
                    .min(crate::image::format::UNLINKED_MAX_LIMIT),
                no_compress,
                no_precopy,
                portable,
                carry,
            };
            let (tx, mut rx) = mpsc::unbounded_channel();
            let work = handshake::suspend(&state, args, &tx);
            tokio::pin!(work);
            let result = loop {
                tokio::select! {
                    done = &mut work => break done,
                    Some(message) = rx.recv() => {
                        // The CLI may have gone; the handshake finishes anyway.
                        let _ = send(&mut writer, &Event::Progress { message }).await;
                    }
                }
            };
            while let Ok(message) = rx.try_recv() {
                let _ = send(&mut writer, &Event::Progress { message }).await;
            }
            let end = match result {
                Ok(done) => Event::Result {
                    outcome: Outcome::Done,
                    message: done.message,
                },
                Err(e) => Event::Result {
                    outcome: e.outcome(),
                    message: e.to_string(),
                },
            };
            send(&mut writer, &end).await
        }
    }
}
