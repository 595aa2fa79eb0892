//! io_uring rings a thread holds.
//!
//! Not saved: a ring's requests in flight, its registered files and
//! buffers and the kernel's side of its queues cannot be read back or
//! made again, and while held its requests write into the process's
//! memory without a fault (a ring made with `IORING_SETUP_NO_MMAP` lives
//! in pages of the process's own that the kernel pins). A ring's fd,
//! its `[io_uring]` mapping or an `iou-*` worker thread shows one in
//! `/proc`; a ring whose fd was closed after it was registered
//! (`IORING_REGISTER_RING_FDS`, used through `IORING_ENTER_REGISTERED_RING`)
//! shows none of them. The task iterator reads each thread's
//! `io_uring_task` instead ([`FACT_IO_URING`]: a ring it registered, or
//! one it used that still exists). A thread that holds one is refused by
//! name, by the dump before the freeze and again once frozen
//! ([`refusals`] from `dump::process::task_refusals`), by a hold before
//! the freeze ([`Consequence::Held`], from `hold::refusals`); the
//! pre-copy is not tried ([`holder`], from `dump::precopy::reason_not`).
//! Where the iterator cannot tell (a kernel whose BTF lacks a member it
//! reads), that is refused too, saying so ([`unchecked`] where it cannot
//! run at all). There is no restore half.

use suspend_common::tasks::{FACT_IO_URING, KNOWN_IO_URING, TaskFacts};

/// What a ring would cost the process, in the refusal's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consequence {
    /// An image: a resume would come back without it.
    Image,
    /// A hold: its memory is released and refilled while held.
    Held,
}

impl Consequence {
    fn words(self) -> &'static str {
        match self {
            Self::Image => "its requests and rings cannot be saved",
            Self::Held => "its requests would write into memory released while held",
        }
    }
}

/// Whether thread `t` holds an io_uring ring, if the task iterator could
/// tell.
pub fn holds(t: &TaskFacts) -> Option<bool> {
    t.has(FACT_IO_URING, KNOWN_IO_URING)
}

/// The first of `threads` that holds a ring or of which the iterator
/// could not tell, with which of the two (`Some(true)`, `None`).
pub fn holder(threads: &[TaskFacts]) -> Option<(u32, Option<bool>)> {
    threads
        .iter()
        .map(|t| (t.tid, holds(t)))
        .find(|&(_, holds)| holds != Some(false))
}

/// What `threads` (the task iterator's, of one process) hold that `what`
/// cannot keep: each thread with a ring, by id and name, then those of
/// which the iterator could not tell. Names are read from `/proc`.
pub fn refusals(threads: &[TaskFacts], what: Consequence) -> Vec<String> {
    refusals_of(threads, what, |t| {
        std::fs::read_to_string(format!("/proc/{}/task/{}/comm", t.tgid, t.tid))
            .map(|c| c.trim_end_matches('\n').to_owned())
            .unwrap_or_else(|_| "?".into())
    })
}

/// [`refusals`], each thread named by `comm`.
fn refusals_of(
    threads: &[TaskFacts],
    what: Consequence,
    comm: impl Fn(&TaskFacts) -> String,
) -> Vec<String> {
    let mut bad: Vec<String> = threads
        .iter()
        .filter(|t| holds(t) == Some(true))
        .map(|t| {
            format!(
                "thread {} ({}): an io_uring ring it registered (IORING_REGISTER_RING_FDS) or \
                 still has: {}",
                t.tid,
                comm(t),
                what.words()
            )
        })
        .collect();
    let unknown: Vec<String> = threads
        .iter()
        .filter(|t| holds(t).is_none())
        .map(|t| format!("{} ({})", t.tid, comm(t)))
        .collect();
    if !unknown.is_empty() {
        bad.push(format!(
            "thread(s) {}: whether they hold an io_uring ring (one registered with \
             IORING_REGISTER_RING_FDS shows no fd or mapping) could not be told on this kernel \
             (the task iterator cannot read io_uring_task): {}",
            unknown.join(", "),
            what.words()
        ));
    }
    bad
}

/// Where the task iterator cannot run (`why`), nothing can tell whether a
/// thread holds a ring it registered: refused, saying so.
pub fn unchecked(why: &str) -> String {
    format!(
        "io_uring rings, which could not be checked ({why}): one a thread registered \
         (IORING_REGISTER_RING_FDS) shows no fd or mapping, and {}",
        Consequence::Image.words()
    )
}

#[cfg(test)]
mod tests {
    use suspend_common::tasks::KNOWN_LDT;

    use super::*;

    fn thread(tid: u32, known: bool, holds: bool) -> TaskFacts {
        TaskFacts {
            tid,
            tgid: 10,
            overrun_timer: -1,
            known: if known {
                KNOWN_IO_URING | KNOWN_LDT
            } else {
                KNOWN_LDT
            },
            facts: if holds { FACT_IO_URING } else { 0 },
            ..TaskFacts::default()
        }
    }

    fn named(t: &TaskFacts) -> String {
        format!("w{}", t.tid)
    }

    #[test]
    fn a_thread_with_a_ring_is_refused_by_name() {
        let threads = [thread(10, true, false), thread(11, true, true)];
        assert_eq!(
            refusals_of(&threads, Consequence::Image, named),
            [
                "thread 11 (w11): an io_uring ring it registered (IORING_REGISTER_RING_FDS) or \
              still has: its requests and rings cannot be saved"
            ]
        );
        assert_eq!(
            refusals_of(&threads, Consequence::Held, named),
            [
                "thread 11 (w11): an io_uring ring it registered (IORING_REGISTER_RING_FDS) or \
              still has: its requests would write into memory released while held"
            ]
        );
        assert_eq!(holder(&threads), Some((11, Some(true))));
    }

    #[test]
    fn none_is_refused_where_no_thread_holds_one() {
        let threads = [thread(10, true, false), thread(11, true, false)];
        assert!(refusals_of(&threads, Consequence::Image, named).is_empty());
        assert!(refusals_of(&threads, Consequence::Held, named).is_empty());
        assert_eq!(holder(&threads), None);
    }

    #[test]
    fn a_thread_the_iterator_could_not_tell_of_is_refused_saying_so() {
        // Unknown (a member missing from BTF, a failed read): never passed.
        let threads = [
            thread(10, false, false),
            thread(11, true, false),
            thread(12, false, false),
        ];
        assert_eq!(
            refusals_of(&threads, Consequence::Image, named),
            [
                "thread(s) 10 (w10), 12 (w12): whether they hold an io_uring ring (one registered \
              with IORING_REGISTER_RING_FDS shows no fd or mapping) could not be told on this \
              kernel (the task iterator cannot read io_uring_task): its requests and rings \
              cannot be saved"
            ]
        );
        assert_eq!(refusals_of(&threads, Consequence::Held, named).len(), 1);
        assert_eq!(holder(&threads), Some((10, None)));
        // A fact set without its known bit is not believed either way.
        assert_eq!(holds(&thread(13, false, true)), None);
    }

    #[test]
    fn an_iterator_that_cannot_run_is_refused_saying_why() {
        assert_eq!(
            unchecked("the task iterator is turned off"),
            "io_uring rings, which could not be checked (the task iterator is turned off): one \
             a thread registered (IORING_REGISTER_RING_FDS) shows no fd or mapping, and its \
             requests and rings cannot be saved"
        );
    }

    #[test]
    fn a_thread_is_named_from_proc() {
        let me = std::process::id();
        let t = TaskFacts {
            tid: me,
            tgid: me,
            known: KNOWN_IO_URING,
            facts: FACT_IO_URING,
            ..TaskFacts::default()
        };
        let comm = std::fs::read_to_string("/proc/self/comm").expect("comm");
        let said = refusals(&[t], Consequence::Image);
        assert!(
            said[0].starts_with(&format!("thread {me} ({}): ", comm.trim_end())),
            "{said:?}"
        );
    }
}
