//! The eBPF programs are the `suspend` binary of this crate (`src/main.rs`),
//! built for `bpfel-unknown-none` by `suspend-agent/build.rs`. This empty
//! library exists so the agent can name the crate as a build dependency and
//! be rebuilt when it changes.
#![no_std]
