//! A Rust program on a multi-threaded tokio runtime (epoll, an eventfd
//! waker, a timer wheel, a blocking pool for stdin) that opts in through
//! the Rust API and checks itself after a resume.
//!
//! Prints `ready pid=N`, then obeys lines on stdin: `state` (`state
//! suspend=N resume=M reason=R`), `check` (`check ok` / `check FAILED:
//! …`: data intact, the interval task still ticking, timers and spawned
//! tasks still work, channels still deliver), `exit` (0 when the last
//! check passed).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use suspend_tests::handshake;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

fn pattern(i: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xbeef
}

async fn check(
    data: &[u64],
    ticks: &AtomicU64,
    tx: &tokio::sync::mpsc::Sender<u64>,
    rx: &mut tokio::sync::mpsc::Receiver<u64>,
) -> Vec<String> {
    let mut bad = Vec::new();
    if let Some(i) = (0..data.len()).find(|&i| data[i] != pattern(i as u64)) {
        bad.push(format!("data differs at {i}"));
    }
    let before = ticks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    if ticks.load(Ordering::SeqCst) <= before {
        bad.push("the interval task stopped ticking".into());
    }
    let tasks: Vec<_> = (0..64u64)
        .map(|i| tokio::spawn(async move { i * 2 }))
        .collect();
    let mut sum = 0;
    for t in tasks {
        sum += t.await.unwrap_or(0);
    }
    if sum != (0..64u64).map(|i| i * 2).sum::<u64>() {
        bad.push(format!("spawned tasks summed to {sum}"));
    }
    if tokio::time::timeout(Duration::from_millis(50), std::future::pending::<()>())
        .await
        .is_ok()
    {
        bad.push("a timeout did not fire".into());
    }
    let sent = before ^ 0x5a5a;
    if tx.send(sent).await.is_err() {
        bad.push("the channel is closed".into());
    }
    match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(v)) if v == sent => {}
        other => bad.push(format!("the channel delivered {other:?}")),
    }
    bad
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    suspend_tests::crash::install();
    suspend_client::register(handshake::counting()).expect("register");
    let data: Vec<u64> = (0..(4 << 20) / 8).map(pattern).collect();
    let ticks = Arc::new(AtomicU64::new(0));
    let t = ticks.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(10));
        loop {
            interval.tick().await;
            t.fetch_add(1, Ordering::SeqCst);
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let mut out = tokio::io::stdout();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let say = |text: String| text + "\n";
    out.write_all(say(format!("ready pid={}", std::process::id())).as_bytes())
        .await
        .unwrap();
    out.flush().await.unwrap();
    let mut last_ok = false;
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = match line.trim() {
            "state" => handshake::state(),
            "check" => {
                let bad = check(&data, &ticks, &tx, &mut rx).await;
                last_ok = bad.is_empty();
                if last_ok {
                    "check ok".into()
                } else {
                    format!("check FAILED: {}", bad.join("; "))
                }
            }
            "exit" => {
                out.write_all(
                    say(format!("exit {}", if last_ok { "ok" } else { "FAILED" })).as_bytes(),
                )
                .await
                .unwrap();
                out.flush().await.unwrap();
                std::process::exit(if last_ok { 0 } else { 1 });
            }
            other => format!("unknown command {other:?}"),
        };
        out.write_all(say(reply).as_bytes()).await.unwrap();
        out.flush().await.unwrap();
    }
}
