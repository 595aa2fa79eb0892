//! How the workload answers the agent: it opts in through the client
//! library (`--context`, `--signals`), and its `on_suspend` / `on_resume`
//! count their calls; `on_suspend` answers as the last `decide` command
//! said. `check` reports the counts (`state …`), `exit` verifies them.

use std::{
    io::Write as _,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::Duration,
};

use suspend_client::{Context, Decision, Handlers, Options, ResumeInfo, SuspendRequest};

/// What `on_suspend` answers: 0 ready, 1 busy, 2 refuse, 3 slow.
static DECISION: AtomicU32 = AtomicU32::new(0);
static SUSPEND_CALLS: AtomicU32 = AtomicU32::new(0);
static RESUME_CALLS: AtomicU32 = AtomicU32::new(0);
static LAST_REASON: AtomicU32 = AtomicU32::new(u32::MAX);
static LAST_REQUEST: AtomicU64 = AtomicU64::new(0);

fn on_suspend(request: &SuspendRequest) -> Decision {
    // What it was told first: the count tells a reader the call came.
    LAST_REQUEST.store(request.id, Ordering::SeqCst);
    SUSPEND_CALLS.fetch_add(1, Ordering::SeqCst);
    match DECISION.load(Ordering::SeqCst) {
        1 => Decision::Busy,
        2 => Decision::Refuse,
        3 => {
            // Slow: takes longer than the tests' short timeouts. (Thread
            // context only: sleeping is fine there, printing is too.)
            println!("on_suspend started");
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_millis(2000));
            Decision::Ready
        }
        _ => Decision::Ready,
    }
}

fn on_resume(info: &ResumeInfo) {
    LAST_REASON.store(info.reason_code, Ordering::SeqCst);
    RESUME_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// Opts in with the callbacks above, in `context`, on the `signals`
/// (suspend, resume) given or the defaults; says `registered agent=…`, or
/// `register failed: …` and exits 1.
pub fn register(context: Context, signals: Option<(i32, i32)>) {
    let mut options = Options {
        context,
        ..Options::default()
    };
    if let Some((suspend_signal, resume_signal)) = signals {
        options.suspend_signal = suspend_signal;
        options.resume_signal = resume_signal;
    }
    match suspend_client::register_with(
        Handlers {
            on_suspend,
            on_resume,
        },
        options,
    ) {
        Ok(r) => println!("registered agent={:?}", r.agent),
        Err(e) => {
            println!("register failed: {e}");
            std::process::exit(1);
        }
    }
}

/// `decide ready|busy|refuse|slow`: what `on_suspend` answers from now on
/// (anything else: ready).
pub fn decide(decision: &str) {
    DECISION.store(
        match decision {
            "busy" => 1,
            "refuse" => 2,
            "slow" => 3,
            _ => 0,
        },
        Ordering::SeqCst,
    );
}

/// The `check` answer: the callbacks' counts, the last resume's reason and
/// request, the calls of `--own-handler`, whether it is registered, and
/// `verdict` (`intact`, or what changed).
pub fn state_line(verdict: &str) -> String {
    format!(
        "state suspend={} resume={} reason={} request={} own_handler={} registered={} memory={}",
        SUSPEND_CALLS.load(Ordering::SeqCst),
        RESUME_CALLS.load(Ordering::SeqCst),
        suspend_tests::handshake::reason_name(LAST_REASON.load(Ordering::SeqCst)),
        LAST_REQUEST.load(Ordering::SeqCst),
        crate::signals::own_handler_calls(),
        suspend_client::is_registered(),
        verdict.replace(' ', "_"),
    )
}

/// `on_resume` never ran more often than `on_suspend`.
pub fn verify_counts() -> Result<(), String> {
    if SUSPEND_CALLS.load(Ordering::SeqCst) < RESUME_CALLS.load(Ordering::SeqCst) {
        return Err("on_resume ran more often than on_suspend".into());
    }
    Ok(())
}
