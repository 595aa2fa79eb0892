//! The namespaces a process is in, and those its children would get.
//!
//! Not saved: a resume puts the process in the resume command's
//! namespaces, which are the agent's (the machine's). Each namespace that
//! is not the agent's own is refused by name before the freeze
//! ([`refusal`]); a held process keeps them. There is no restore half.

use std::path::PathBuf;

/// Each namespace `/proc/PID/ns` holds, and what people call it.
const KINDS: [(&str, &str); 10] = [
    ("mnt", "mount namespace"),
    ("net", "network namespace"),
    ("uts", "UTS (host name) namespace"),
    ("ipc", "IPC namespace"),
    ("user", "user namespace"),
    ("cgroup", "cgroup namespace"),
    ("pid", "pid namespace"),
    ("pid_for_children", "pid namespace for its children"),
    ("time", "time namespace"),
    ("time_for_children", "time namespace for its children"),
];

/// The namespaces of `pid` (and those its children would get) that are
/// not the agent's own, in one line.
pub fn refusal(pid: u32) -> Option<String> {
    let link = |who: &str, kind: &str| std::fs::read_link(format!("/proc/{who}/ns/{kind}")).ok();
    refusal_of(&pid.to_string(), link)
}

/// [`refusal`] of `who`, each namespace told by `link(who or "self",
/// kind)` (its `/proc/…/ns` link; `None` where it cannot be read: not
/// refused).
fn refusal_of(who: &str, link: impl Fn(&str, &str) -> Option<PathBuf>) -> Option<String> {
    let foreign: Vec<String> = KINDS
        .iter()
        .filter_map(|(kind, name)| {
            let (theirs, ours) = (link(who, kind)?, link("self", kind)?);
            (theirs != ours).then(|| format!("its {name} {}", theirs.display()))
        })
        .collect();
    (!foreign.is_empty()).then(|| {
        format!(
            "{} (a resume puts it in the resume command's; the agent's are the machine's)",
            foreign.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{refusal, refusal_of};

    #[test]
    fn the_agents_own_namespaces_are_not_refused() {
        assert_eq!(refusal(std::process::id()), None);
    }

    #[test]
    fn each_namespace_not_the_agents_is_named_with_its_link() {
        let link = |who: &str, kind: &str| {
            let n = match (who, kind) {
                ("42", "net") => 4026532999u32,
                ("42", "pid_for_children") => 4026533000,
                ("42", "time") => return None,
                _ => 4026531840,
            };
            Some(PathBuf::from(format!("{kind}:[{n}]")))
        };
        assert_eq!(
            refusal_of("42", link).as_deref(),
            Some(
                "its network namespace net:[4026532999], its pid namespace for its children \
                 pid_for_children:[4026533000] (a resume puts it in the resume command's; the \
                 agent's are the machine's)"
            )
        );
    }
}
