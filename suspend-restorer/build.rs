//! Links the blob with `restorer.ld` (only for the freestanding target; the
//! host build is an empty program).

fn main() {
    println!("cargo:rerun-if-changed=restorer.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        for arg in [
            format!("-T{dir}/restorer.ld"),
            "-static".into(),
            "-pie".into(),
            "--no-dynamic-linker".into(),
            "-znorelro".into(),
        ] {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}
