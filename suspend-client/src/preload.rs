//! The preload shim: `suspend-agent run -- PROGRAM` execs PROGRAM with this
//! library in `LD_PRELOAD` and `SUSPEND_PRELOAD=<its pid>`. In that process
//! the constructor below registers with the default handlers (always ready).
//! The variables stay while the pid stays, so a wrapper that execs the real
//! program (a pyenv shim, a shell script) hands the opt-in on to it: exec
//! drops the wrapper's registration and the program registers anew. Any
//! other process (a child) takes the variables out of its environment and is
//! not opted in.

use suspend_common::paths::{PRELOAD_ENV, PRELOAD_SIGNALS_ENV};

use crate::{api::Options, registration};

/// The library's own name, to drop from `LD_PRELOAD`.
const SHIM: &str = "libsuspend_client.so";

extern "C" fn preload_init() {
    let Some(target) = std::env::var_os(PRELOAD_ENV) else {
        return;
    };
    if target.to_str().and_then(|t| t.parse::<u32>().ok()) != Some(std::process::id()) {
        scrub_environment();
        return;
    }
    let mut options = Options::default();
    if let Some(signals) = std::env::var_os(PRELOAD_SIGNALS_ENV) {
        match signals.to_str().and_then(parse_signals) {
            Some((suspend, resume)) => {
                options.suspend_signal = suspend;
                options.resume_signal = resume;
            }
            None => {
                eprintln!(
                    "suspend preload shim: {PRELOAD_SIGNALS_ENV}={signals:?} is not S,R; not \
                     registered"
                );
                return;
            }
        }
    }
    if let Err(e) = registration::register_callbacks(
        registration::Callbacks::Rust(crate::Handlers::default()),
        options,
        true,
    ) {
        eprintln!("suspend preload shim: could not register: {e}");
    }
}

/// `SUSPEND_PRELOAD_SIGNALS`: `SUSPEND,RESUME`.
fn parse_signals(s: &str) -> Option<(i32, i32)> {
    let (suspend, resume) = s.split_once(',')?;
    Some((suspend.trim().parse().ok()?, resume.trim().parse().ok()?))
}

/// Whether an `LD_PRELOAD` entry (a path or a bare name) is this library:
/// its file name is [`SHIM`] or [`SHIM`] with a version (`.so.1`,
/// `.so.1.2.3`: what `run` puts there when the shim it found is a link to
/// a versioned file), not another library's name that merely contains it.
fn is_shim(entry: &str) -> bool {
    let name = entry.rsplit('/').next().unwrap_or(entry);
    name.strip_prefix(SHIM).is_some_and(|version| {
        version.is_empty()
            || version.strip_prefix('.').is_some_and(|v| {
                v.split('.')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
    })
}

/// The entries of an `LD_PRELOAD` value but this library.
fn without_shim(ld_preload: &str) -> Vec<String> {
    ld_preload
        .split([' ', ':'])
        .filter(|entry| !entry.is_empty() && !is_shim(entry))
        .map(str::to_owned)
        .collect()
}

/// Removes `SUSPEND_PRELOAD` and this library from `LD_PRELOAD`.
fn scrub_environment() {
    let rest = without_shim(&std::env::var("LD_PRELOAD").unwrap_or_default());
    // SAFETY: runs in the constructor, before main and before any thread
    // the program starts, so nothing reads the environment concurrently.
    unsafe {
        std::env::remove_var(PRELOAD_ENV);
        std::env::remove_var(PRELOAD_SIGNALS_ENV);
        if rest.is_empty() {
            std::env::remove_var("LD_PRELOAD");
        } else {
            std::env::set_var("LD_PRELOAD", rest.join(" "));
        }
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static PRELOAD_INIT: extern "C" fn() = preload_init;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signals_are_two_numbers_split_by_a_comma() {
        assert_eq!(parse_signals("45,46"), Some((45, 46)));
        assert_eq!(parse_signals(" 45 , 46 "), Some((45, 46)));
        for bad in ["45", "45;46", "45,", ",46", "a,46", "45,46,47", ""] {
            assert_eq!(parse_signals(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_this_library_leaves_ld_preload() {
        assert_eq!(
            without_shim("/usr/lib/libsuspend_client.so:/opt/libfast.so"),
            ["/opt/libfast.so"]
        );
        assert_eq!(
            without_shim("libjemalloc.so  /x/libsuspend_client.so /y/libz.so"),
            ["libjemalloc.so", "/y/libz.so"]
        );
        assert!(without_shim("/usr/lib/libsuspend_client.so").is_empty());
        assert!(without_shim("").is_empty());
    }

    #[test]
    fn a_versioned_name_of_this_library_leaves_ld_preload_too() {
        // `run` puts the shim's canonical path there: a packaged
        // `libsuspend_client.so` is a link to `libsuspend_client.so.1.2.3`.
        assert!(without_shim("/usr/lib/libsuspend_client.so.1").is_empty());
        assert!(without_shim("libsuspend_client.so.1.2.3:/x/libsuspend_client.so.0").is_empty());
        // Another library whose name merely contains ours, or begins or
        // ends with it, stays.
        let others = [
            "/x/mylibsuspend_client.so",
            "/x/libsuspend_client.so.1x",
            "/x/libsuspend_client.so.",
            "/x/libsuspend_client.so..1",
            "/x/libsuspend_client.so.bak",
            "/x/libsuspend_client.sox",
            "/x/libsuspend_client.so/libz.so",
        ];
        for other in others {
            assert_eq!(without_shim(other), [other], "{other}");
        }
    }
}
