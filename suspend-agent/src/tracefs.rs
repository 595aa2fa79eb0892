//! Tracepoint record layouts, read from the running kernel's format files,
//! so the eBPF programs read the right offsets on every kernel.

use std::{fs, path::Path};

use suspend_common::tracepoints::TracepointLayout;

/// Where tracefs is mounted.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// Offset of field `name` in a tracepoint `format` file, if it has one.
pub fn field_offset(format: &str, name: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let line = line.trim();
        let decl = line.strip_prefix("field:")?.split(';').next()?;
        // The declaration ends with the field name, possibly with an array
        // suffix (`char comm[16]`).
        let field = decl.rsplit(' ').next()?.split('[').next()?;
        if field != name {
            return None;
        }
        let offset = line.split("offset:").nth(1)?.split(';').next()?;
        offset.trim().parse().ok()
    })
}

/// Reads the offsets the eBPF programs need from tracefs. Fields that must
/// exist fall back to the default layout when a format file cannot be read
/// (the attach then fails with a clearer error); `group_dead` is 0 when this
/// kernel lacks it.
pub fn read_layout(tracefs: &Path) -> TracepointLayout {
    let read =
        |event: &str| fs::read_to_string(tracefs.join("events").join(event).join("format")).ok();
    let d = TracepointLayout::DEFAULT;
    let exit = read("sched/sched_process_exit");
    let generate = read("signal/signal_generate");
    let deliver = read("signal/signal_deliver");
    let sigaction = read("syscalls/sys_enter_rt_sigaction");
    let newtask = read("task/task_newtask");
    let switch = read("sched/sched_switch");
    let get = |text: &Option<String>, field: &str, default: u32| {
        text.as_deref()
            .and_then(|t| field_offset(t, field))
            .unwrap_or(default)
    };
    TracepointLayout {
        exit_group_dead: exit
            .as_deref()
            .and_then(|t| field_offset(t, "group_dead"))
            .unwrap_or(0),
        generate_sig: get(&generate, "sig", d.generate_sig),
        generate_code: get(&generate, "code", d.generate_code),
        generate_pid: get(&generate, "pid", d.generate_pid),
        deliver_sig: get(&deliver, "sig", d.deliver_sig),
        deliver_handler: get(&deliver, "sa_handler", d.deliver_handler),
        sigaction_sig: get(&sigaction, "sig", d.sigaction_sig),
        sigaction_act: get(&sigaction, "act", d.sigaction_act),
        newtask_pid: get(&newtask, "pid", d.newtask_pid),
        newtask_flags: get(&newtask, "clone_flags", d.newtask_flags),
        switch_next_pid: get(&switch, "next_pid", d.switch_next_pid),
        _pad: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT_6_18: &str = "name: sched_process_exit\nID: 321\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
        \tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
        \tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;\n\
        \tfield:int prio;\toffset:28;\tsize:4;\tsigned:1;\n\
        \tfield:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;\n\nprint fmt: \"...\"\n";

    const SIGACTION: &str = "format:\n\
        \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
        \tfield:int sig;\toffset:16;\tsize:8;\tsigned:0;\n\
        \tfield:const struct sigaction * act;\toffset:24;\tsize:8;\tsigned:0;\n\
        \tfield:struct sigaction * oact;\toffset:32;\tsize:8;\tsigned:0;\n";

    #[test]
    fn offsets() {
        assert_eq!(field_offset(EXIT_6_18, "group_dead"), Some(32));
        assert_eq!(field_offset(EXIT_6_18, "comm"), Some(8));
        assert_eq!(field_offset(EXIT_6_18, "pid"), Some(24));
        assert_eq!(field_offset(EXIT_6_18, "common_pid"), Some(4));
        assert_eq!(field_offset(EXIT_6_18, "missing"), None);
        assert_eq!(field_offset(SIGACTION, "act"), Some(24));
        assert_eq!(field_offset(SIGACTION, "oact"), Some(32));
        assert_eq!(field_offset(SIGACTION, "sig"), Some(16));
    }

    #[test]
    fn older_exit_has_no_group_dead() {
        let old = EXIT_6_18.replace(
            "\tfield:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;\n",
            "",
        );
        assert_eq!(field_offset(&old, "group_dead"), None);
    }
}
