//! Would a thread's seccomp filters let it make a system call? A held
//! thread waits in `pause` with its filters in force (they are suspended
//! only while the agent traces it): a filter that denies `pause` would kill
//! it, or spin it on an error, for as long as it is held. The filters are
//! classic BPF over `struct seccomp_data`; this runs them the way the
//! kernel does and combines their verdicts (the most restrictive wins).

/// `struct seccomp_data` for one call.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub nr: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const SECCOMP_RET_ACTION_FULL: u32 = 0xffff_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;

impl Call {
    fn data(&self) -> [u8; 64] {
        let mut d = [0u8; 64];
        d[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        d[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_ne_bytes());
        d[8..16].copy_from_slice(&self.ip.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        d
    }
}

/// Runs one filter (its `struct sock_filter` array as bytes) on `call`;
/// the value it returns. A malformed filter (which the kernel would not
/// have accepted) answers `SECCOMP_RET_KILL_PROCESS`.
pub fn run(filter: &[u8], call: &Call) -> u32 {
    let data = call.data();
    let insns: Vec<(u16, u8, u8, u32)> = filter
        .as_chunks::<8>()
        .0
        .iter()
        .map(|c| {
            (
                u16::from_ne_bytes([c[0], c[1]]),
                c[2],
                c[3],
                u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect();
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    // Every jump goes forward: at most one pass.
    while let Some(&(code, jt, jf, k)) = insns.get(pc) {
        pc += 1;
        let src = if code & 0x08 != 0 { x } else { k };
        match code & 0x07 {
            // BPF_LD
            0x00 => match code & 0xe0 {
                0x20 => {
                    // BPF_ABS, word
                    let at = k as usize;
                    if code & 0x18 != 0 || !at.is_multiple_of(4) || at + 4 > data.len() {
                        return SECCOMP_RET_KILL_PROCESS;
                    }
                    a = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap_or_default());
                }
                0x00 => a = k,                      // BPF_IMM
                0x80 => a = data.len() as u32,      // BPF_LEN
                0x60 => a = mem[(k & 15) as usize], // BPF_MEM
                _ => return SECCOMP_RET_KILL_PROCESS,
            },
            // BPF_LDX
            0x01 => match code & 0xe0 {
                0x00 => x = k,
                0x80 => x = data.len() as u32,
                0x60 => x = mem[(k & 15) as usize],
                _ => return SECCOMP_RET_KILL_PROCESS,
            },
            0x02 => mem[(k & 15) as usize] = a, // BPF_ST
            0x03 => mem[(k & 15) as usize] = x, // BPF_STX
            // BPF_ALU
            0x04 => {
                a = match code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x30 if src != 0 => a / src,
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.checked_shl(src).unwrap_or(0),
                    0x70 => a.checked_shr(src).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 if src != 0 => a % src,
                    0xa0 => a ^ src,
                    _ => return SECCOMP_RET_KILL_PROCESS,
                }
            }
            // BPF_JMP
            0x05 => {
                let op = code & 0xf0;
                if op == 0x00 {
                    pc += k as usize; // BPF_JA
                    continue;
                }
                let taken = match op {
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    0x40 => a & src != 0,
                    _ => return SECCOMP_RET_KILL_PROCESS,
                };
                pc += if taken { jt } else { jf } as usize;
            }
            // BPF_RET
            0x06 => {
                return match code & 0x18 {
                    0x00 => k,
                    0x10 => a,
                    _ => SECCOMP_RET_KILL_PROCESS,
                };
            }
            // BPF_MISC: TAX / TXA
            0x07 => {
                if code & 0xf8 == 0x00 {
                    x = a;
                } else {
                    a = x;
                }
            }
            _ => return SECCOMP_RET_KILL_PROCESS,
        }
    }
    SECCOMP_RET_KILL_PROCESS
}

/// Whether `filters` (every filter of a thread) let `call` through: every
/// one of them allows it (or only logs it).
pub fn allows(filters: &[Vec<u8>], call: &Call) -> bool {
    filters.iter().all(|f| {
        let action = run(f, call) & SECCOMP_RET_ACTION_FULL;
        action == SECCOMP_RET_ALLOW || action == SECCOMP_RET_LOG
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&code.to_ne_bytes());
        b[2] = jt;
        b[3] = jf;
        b[4..8].copy_from_slice(&k.to_ne_bytes());
        b
    }

    /// `nr == deny ? RET_ERRNO : RET_ALLOW`, after an arch check.
    fn deny(nr: u32) -> Vec<u8> {
        [
            insn(0x20, 0, 0, 4),                 // ld arch
            insn(0x15, 1, 0, AUDIT_ARCH_X86_64), // jeq arch, +1
            insn(0x06, 0, 0, SECCOMP_RET_KILL_PROCESS),
            insn(0x20, 0, 0, 0),           // ld nr
            insn(0x15, 0, 1, nr),          // jeq nr
            insn(0x06, 0, 0, 0x0005_0001), // ret ERRNO(1)
            insn(0x06, 0, 0, SECCOMP_RET_ALLOW),
        ]
        .concat()
    }

    fn call(nr: u32) -> Call {
        Call {
            nr,
            ip: 0x1000,
            args: [0; 6],
        }
    }

    #[test]
    fn a_filter_that_denies_another_call_allows_pause() {
        assert!(allows(&[deny(59)], &call(34)));
        assert!(!allows(&[deny(34)], &call(34)));
    }

    #[test]
    fn every_filter_must_allow() {
        assert!(!allows(&[deny(59), deny(34)], &call(34)));
        assert!(allows(&[deny(59), deny(60)], &call(34)));
    }

    #[test]
    fn logging_allows_and_a_malformed_filter_does_not() {
        let log = insn(0x06, 0, 0, SECCOMP_RET_LOG).to_vec();
        assert!(allows(&[log], &call(34)));
        let bad = insn(0x20, 0, 0, 200).to_vec(); // past seccomp_data
        assert!(!allows(&[bad], &call(34)));
        assert!(!allows(&[Vec::new()], &call(34)), "no return: killed");
    }

    #[test]
    fn alu_and_x_register_work() {
        // a = nr; a &= 0xff; x = a; a = 34; jeq x → allow
        let f = [
            insn(0x20, 0, 0, 0),
            insn(0x54, 0, 0, 0xff),
            insn(0x07, 0, 0, 0), // tax
            insn(0x00, 0, 0, 34),
            insn(0x1d, 0, 1, 0), // jeq x
            insn(0x06, 0, 0, SECCOMP_RET_ALLOW),
            insn(0x06, 0, 0, 0),
        ]
        .concat();
        assert!(allows(std::slice::from_ref(&f), &call(34)));
        assert!(!allows(&[f], &call(35)));
    }
}
