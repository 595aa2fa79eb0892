//! The agent's layers, lowest first; a module imports only from layers
//! below its own (never from its own layer's other modules, never from
//! above). ARCHITECTURE.md draws the same table; [`tests::layers_import_only_downward`]
//! fails `cargo test` (so `./x test`) when a `crate::` path breaks it.
//!
//! `sys` is also the one place that calls `libc`:
//! [`tests::libc_is_called_only_in_sys`] fails when a `libc::name(` call
//! (a function: a lowercase name) appears in any other file; `libc`'s
//! constants and types stay usable everywhere.
//!
//! | layer | modules | what |
//! |---|---|---|
//! | 1 | `sys`, `exit` | raw system calls and CPU queries; exit codes |
//! | 2 | `image` | the image format: records, writer, reader, signature, stream |
//! | 3 | `procfs`, `tracefs`, `btf`, `mounts` | what `/proc` and `/sys` say |
//! | 4 | `tracee` | a thread held with ptrace; syscalls run inside it |
//! | 5 | `registry`, `tasks` | the pinned registry map and who may change it; the task iterator |
//! | 6 | `freeze` | stopping every thread of a process |
//! | 7 | `state` | kinds of process state: each one's save and restore halves side by side |
//! | 8 | `dump`, `restore`, `hold` | the flows: process → image, image → process; a held process parked and refilled |
//! | 9 | `control` | the CLI ⇄ daemon protocol |
//! | 10 | `daemon` | the daemon: eBPF programs, sockets, handshakes |
//! | 11 | `cli` | the subcommands |

/// The layers, lowest first.
#[cfg_attr(not(test), expect(dead_code, reason = "read by the layer check"))]
pub const LAYERS: &[&[&str]] = &[
    &["sys", "exit"],
    &["image"],
    &["procfs", "tracefs", "btf", "mounts"],
    &["tracee"],
    &["registry", "tasks"],
    &["freeze"],
    &["state"],
    &["dump", "restore", "hold"],
    &["control"],
    &["daemon"],
    &["cli"],
];

#[cfg(test)]
mod tests {
    use std::{collections::BTreeSet, fs, path::Path};

    use super::LAYERS;

    fn layer(module: &str) -> Option<usize> {
        LAYERS.iter().position(|l| l.contains(&module))
    }

    /// The first path segment of each item a `use crate::{…}` names.
    fn braced(text: &str) -> Vec<String> {
        let (mut depth, mut item, mut items) = (0, String::new(), Vec::new());
        for c in text.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(std::mem::take(&mut item));
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        items.push(item);
        items
            .iter()
            .filter_map(|i| first_segment(i.trim()))
            .collect()
    }

    fn first_segment(text: &str) -> Option<String> {
        let name: String = text
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty()).then_some(name)
    }

    /// Every top-level module a source file refers to through `crate::`.
    fn imports(source: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut rest = source;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(inner) = rest.strip_prefix('{') {
                let mut depth = 1;
                let end = inner
                    .char_indices()
                    .find(|&(_, c)| {
                        match c {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        depth == 0
                    })
                    .map_or(inner.len(), |(i, _)| i);
                found.extend(braced(&inner[..end]));
            } else if let Some(name) = first_segment(rest) {
                found.insert(name);
            }
        }
        found
    }

    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in fs::read_dir(dir).expect("source directory").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }

    #[test]
    fn layers_import_only_downward() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        let mut broken = Vec::new();
        let mut checked = 0;
        for file in &files {
            let relative = file.strip_prefix(&src).expect("under src");
            let module = relative
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .map(|c| c.trim_end_matches(".rs").to_owned())
                .expect("a module");
            if module == "main" || module == "layers" {
                continue;
            }
            let Some(own) = layer(&module) else {
                broken.push(format!(
                    "{}: module `{module}` is in no layer (add it to LAYERS)",
                    relative.display()
                ));
                continue;
            };
            let source = fs::read_to_string(file).expect("source file");
            for import in imports(&source) {
                if import == module || import == "self" || import == "super" {
                    continue;
                }
                checked += 1;
                match layer(&import) {
                    Some(theirs) if theirs < own => {}
                    Some(theirs) => broken.push(format!(
                        "{}: `{module}` (layer {}) imports `{import}` (layer {})",
                        relative.display(),
                        own + 1,
                        theirs + 1
                    )),
                    None => broken.push(format!(
                        "{}: imports `{import}`, which is in no layer",
                        relative.display()
                    )),
                }
            }
        }
        assert!(checked > 20, "the check found only {checked} imports");
        assert!(
            broken.is_empty(),
            "imports against the layers:\n{}",
            broken.join("\n")
        );
    }

    /// Every call of a `libc` function in a source file: (line, name), for
    /// each `libc::name(` with a lowercase (or `_`) name, outside `//`
    /// comments.
    fn libc_calls(source: &str) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        for (i, line) in source.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let mut rest = code;
            while let Some(at) = rest.find("libc::") {
                rest = &rest[at + "libc::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let called = rest[name.len()..].trim_start().starts_with('(');
                if called && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
                    found.push((i + 1, name));
                }
            }
        }
        found
    }

    #[test]
    fn libc_is_called_only_in_sys() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        let (mut outside, mut inside) = (Vec::new(), 0);
        for file in &files {
            let relative = file.strip_prefix(&src).expect("under src");
            if relative == Path::new("layers.rs") {
                continue; // this test's own examples
            }
            let calls = libc_calls(&fs::read_to_string(file).expect("source file"));
            if relative.starts_with("sys") {
                inside += calls.len();
                continue;
            }
            outside.extend(
                calls
                    .into_iter()
                    .map(|(line, name)| format!("{}:{line}: libc::{name}", relative.display())),
            );
        }
        assert!(inside > 50, "the check found only {inside} calls in sys/");
        assert!(
            outside.is_empty(),
            "libc called outside sys/ (wrap the call in a sys/ module):\n{}",
            outside.join("\n")
        );
    }

    #[test]
    fn libc_calls_are_told_from_constants_and_types() {
        let source = "let fd = unsafe { libc::open(p, libc::O_RDONLY) };\n\
                      let e = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 0 };\n\
                      // libc::close(fd) in a comment\n\
                      let pid: libc::pid_t = 0; unsafe { libc::__errno_location () };\n\
                      libc::WIFSIGNALED(status); libc::syscall(libc::SYS_getpid);";
        assert_eq!(
            libc_calls(source),
            [
                (1, "open".to_owned()),
                (4, "__errno_location".to_owned()),
                (5, "syscall".to_owned())
            ]
        );
    }

    #[test]
    fn imports_are_found_in_every_form() {
        let source =
            "use crate::{a, b::{c, d}, e::f as g};\nfn x() { crate::h::i(); }\nuse crate::j;";
        assert_eq!(
            imports(source).into_iter().collect::<Vec<_>>(),
            ["a", "b", "e", "h", "j"]
        );
    }
}
