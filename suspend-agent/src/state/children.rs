//! The process's children.
//!
//! Not saved: an image cannot make another process its child again. Each
//! child of any of its threads is refused by pid before the freeze
//! ([`refusal`]); a held process keeps them. There is no restore half.

/// The children of `pid`'s threads (`/proc/PID/task/TID/children`).
pub fn refusal(pid: u32) -> Option<String> {
    let mut children = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                children.extend(text.split_whitespace().map(str::to_owned));
            }
        }
    }
    refusal_of(&children)
}

/// [`refusal`] of the children with pids `children`.
fn refusal_of(children: &[String]) -> Option<String> {
    (!children.is_empty()).then(|| {
        format!(
            "child process(es) {} (an image cannot make them its children again)",
            children.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{refusal, refusal_of};

    #[test]
    fn each_child_is_named_by_its_pid() {
        assert_eq!(refusal_of(&[]), None);
        assert_eq!(
            refusal_of(&["17".into(), "19".into()]).as_deref(),
            Some("child process(es) 17, 19 (an image cannot make them its children again)")
        );
    }

    #[test]
    fn a_child_of_a_thread_is_found() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let found = refusal(std::process::id());
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(
            found.is_some_and(|f| f.contains(&child.id().to_string())),
            "its child {} named",
            child.id()
        );
    }
}
