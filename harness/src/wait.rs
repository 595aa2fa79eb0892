//! Waiting for something with a deadline.

use std::{
    thread,
    time::{Duration, Instant},
};

/// How long any single wait may take before it fails: a workload's
/// answer, a daemon's start.
pub const WAIT: Duration = Duration::from_secs(20);

/// Calls `f` every `every` until it returns `Some`, for at most `limit`;
/// `None` if it never did. `f` runs at least once, and once more after the
/// deadline's last sleep.
pub fn poll<T>(limit: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_until_some_or_the_deadline() {
        let mut calls = 0;
        let got = poll(Duration::from_secs(5), Duration::ZERO, || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, Some(3));
        let started = Instant::now();
        let never = poll(Duration::from_millis(30), Duration::from_millis(5), || {
            None::<()>
        });
        assert_eq!(never, None);
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
