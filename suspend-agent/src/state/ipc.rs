//! SysV IPC a process holds apart from its memory: the undo values of its
//! semaphore operations (`semop` with `SEM_UNDO`). (A SysV shared memory
//! segment it has attached is a mapping: `mappings`.)
//!
//! Not saved: the kernel applies the adjustments when the process exits,
//! and nothing sets them but the semops themselves. Nothing shows which
//! process has them either (`KCMP_SYSVSEM` only tells whether a process
//! has an undo list, and every threaded one has: `pthread_create` makes
//! it), but a process can have them only on a semaphore set it may alter.
//! So any such set is refused by name before the freeze
//! ([`semaphore_undo_refusal`]). There is no restore half.

/// The SysV semaphore sets `pid` may alter (`/proc/sysvipc/sem`, against
/// its credentials in `/proc/PID/status`), where it may have left undo
/// values.
pub fn semaphore_undo_refusal(pid: u32) -> Option<String> {
    let sets = std::fs::read_to_string("/proc/sysvipc/sem").ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    undo_refusal_of(&crate::procfs::alterable_semaphore_sets(&sets, &status))
}

/// [`semaphore_undo_refusal`] of the sets with ids `alterable`.
fn undo_refusal_of(alterable: &[i32]) -> Option<String> {
    (!alterable.is_empty()).then(|| {
        format!(
            "maybe SysV semaphore undo values: it may alter semaphore set(s) {} (a semop with \
             SEM_UNDO leaves adjustments the kernel applies when the process is killed and a \
             resume cannot set; nothing shows whether it made one)",
            alterable
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::undo_refusal_of;

    #[test]
    fn each_set_it_may_alter_is_named() {
        assert_eq!(undo_refusal_of(&[]), None);
        assert_eq!(
            undo_refusal_of(&[0, 32769]).as_deref(),
            Some(
                "maybe SysV semaphore undo values: it may alter semaphore set(s) 0, 32769 (a \
                 semop with SEM_UNDO leaves adjustments the kernel applies when the process is \
                 killed and a resume cannot set; nothing shows whether it made one)"
            )
        );
    }
}
