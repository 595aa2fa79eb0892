//! Device numbers: a `dev_t` split into its major and minor and made
//! from them again (glibc's encoding, as `stat` gives it).

/// The major number of device `dev`.
pub const fn major(dev: u64) -> u32 {
    libc::major(dev)
}

/// The minor number of device `dev`.
pub const fn minor(dev: u64) -> u32 {
    libc::minor(dev)
}

/// The `dev_t` of device `major:minor`.
pub const fn makedev(major: u32, minor: u32) -> u64 {
    libc::makedev(major, minor)
}

/// `MAJOR:MINOR` in hex, at least two digits each, as `/proc` writes a
/// device (`/proc/PID/maps`, `/proc/locks`).
pub fn hex(dev: u64) -> String {
    format!("{:02x}:{:02x}", major(dev), minor(dev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_number_splits_into_what_made_it() {
        let dev = makedev(259, 0x1_2345);
        assert_eq!((major(dev), minor(dev)), (259, 0x1_2345));
        assert_eq!(hex(makedev(8, 1)), "08:01");
        assert_eq!(hex(makedev(0xfe, 0)), "fe:00");
    }
}
