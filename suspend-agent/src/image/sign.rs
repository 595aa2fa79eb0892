//! Who wrote an image: every image's metadata is signed with this
//! machine's Ed25519 key, and `resume` acts only on an image signed by a
//! key it trusts. The metadata holds the BLAKE3 hash of every page run, so
//! the signature covers the whole image.
//!
//! The keys live in [`KEY_DIR`] (root's, mode 0700):
//!
//! - `signing.key`: this machine's private key (32 bytes, mode 0600),
//!   made at the daemon's first start (or the first suspend or resume);
//! - `trusted/ID.pub`: public keys of other machines whose images may be
//!   resumed here, added by `suspend-agent key trust`. This machine's own
//!   public key is always trusted.
//!
//! A key is named by its id: the first 8 bytes of the BLAKE3 hash of the
//! public key, in hex. An image's signature (`meta.sig`) is one line,
//! `ed25519 ID SIGNATURE`, over [`signed_message`] of `meta.jsonl`.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read as _, Write as _},
    os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

/// Where the keys are.
pub const KEY_DIR: &str = "/var/lib/suspend";
/// This machine's private key, in [`KEY_DIR`].
const SIGNING_KEY: &str = "signing.key";
/// Other machines' public keys, in [`KEY_DIR`].
const TRUSTED: &str = "trusted";
/// What a signature line starts with.
const SCHEME: &str = "ed25519";
/// The most a signature file may hold (it is one short line).
pub const MAX_SIG_BYTES: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path} is not safe to keep keys in: {why} (it must be a directory owned by root, \
         writable by nobody else)"
    )]
    Unsafe { path: PathBuf, why: String },
    #[error("{path}: not a key ({why})")]
    Malformed { path: PathBuf, why: String },
    #[error("a new key's seed: {0}")]
    Random(#[from] crate::sys::SyscallError),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{path}: the image is not signed ({source})")]
    Unsigned { path: PathBuf, source: io::Error },
    #[error("{path}: not a signature line")]
    Malformed { path: PathBuf },
    #[error(
        "{path}: signed by key {id}, which this machine does not trust (`suspend-agent key \
         trust` adds another machine's key)"
    )]
    Untrusted { path: PathBuf, id: String },
    #[error("{path}: the signature does not match: the image was changed after key {id} signed it")]
    Altered { path: PathBuf, id: String },
    #[error(transparent)]
    Key(#[from] KeyError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> KeyError {
    let path = path.to_path_buf();
    move |source| KeyError::Io { path, source }
}

/// A key's id: the first 8 bytes of the BLAKE3 hash of the public key.
pub fn key_id(key: &VerifyingKey) -> String {
    hex(&blake3::hash(key.as_bytes()).as_bytes()[..8])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// What a signature covers: a fixed context and the BLAKE3 hash of the
/// metadata (which holds every page run's hash).
fn signed_message(meta: &blake3::Hash) -> Vec<u8> {
    let mut message = b"suspend-image meta.jsonl blake3 ".to_vec();
    message.extend_from_slice(meta.as_bytes());
    message
}

/// The keys of one directory: this machine's own and the trusted ones.
#[derive(Debug)]
pub struct Keys {
    dir: PathBuf,
}

impl Keys {
    /// The keys in `dir`, which is made (0700) if missing and must be
    /// root's and writable by nobody else.
    pub fn open(dir: &Path) -> Result<Self, KeyError> {
        match fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => {}
            Err(e) => return Err(io_err(dir)(e)),
        }
        let meta = fs::symlink_metadata(dir).map_err(io_err(dir))?;
        let unsafe_dir = |why: String| KeyError::Unsafe {
            path: dir.to_path_buf(),
            why,
        };
        if !meta.is_dir() {
            return Err(unsafe_dir("not a directory".into()));
        }
        if meta.uid() != 0 {
            return Err(unsafe_dir(format!("owned by uid {}", meta.uid())));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(unsafe_dir(format!("mode {:o}", meta.mode() & 0o7777)));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The keys in [`KEY_DIR`].
    pub fn system() -> Result<Self, KeyError> {
        Self::open(Path::new(KEY_DIR))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This machine's private key, made now if there is none yet.
    pub fn signing(&self) -> Result<SigningKey, KeyError> {
        let path = self.dir.join(SIGNING_KEY);
        match read_bounded(&path, 64) {
            Ok(bytes) => {
                let seed: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed {
                    path: path.clone(),
                    why: "not 32 bytes".into(),
                })?;
                Ok(SigningKey::from_bytes(&seed))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.create_signing(&path),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Makes the private key: written whole to a temporary file, then
    /// linked to its name, so two agents starting at once agree on one.
    fn create_signing(&self, path: &Path) -> Result<SigningKey, KeyError> {
        let mut seed = [0u8; 32];
        crate::sys::random(&mut seed)?;
        let temp = self
            .dir
            .join(format!(".{SIGNING_KEY}.{}", std::process::id()));
        let _ = fs::remove_file(&temp);
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            f.write_all(&seed)?;
            f.sync_all()?;
            fs::hard_link(&temp, path)
        })();
        let _ = fs::remove_file(&temp);
        match written {
            Ok(()) => {
                if let Ok(d) = File::open(&self.dir) {
                    let _ = d.sync_all();
                }
                log::info!(
                    "made this machine's image signing key {} ({})",
                    key_id(&SigningKey::from_bytes(&seed).verifying_key()),
                    path.display()
                );
                Ok(SigningKey::from_bytes(&seed))
            }
            // Another agent made it meanwhile: theirs it is.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => self.signing(),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Every key an image may be signed with: this machine's and the
    /// trusted ones.
    pub fn trusted(&self) -> Result<Vec<VerifyingKey>, KeyError> {
        let mut keys = vec![self.signing()?.verifying_key()];
        let dir = self.dir.join(TRUSTED);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for entry in entries {
            let path = entry.map_err(io_err(&dir))?.path();
            if path.extension().is_none_or(|e| e != "pub") {
                continue;
            }
            let bytes = read_bounded(&path, 256).map_err(io_err(&path))?;
            keys.push(
                parse_public(&String::from_utf8_lossy(&bytes)).ok_or_else(|| {
                    KeyError::Malformed {
                        path: path.clone(),
                        why: "not 64 hex digits of an Ed25519 public key".into(),
                    }
                })?,
            );
        }
        Ok(keys)
    }

    /// Trusts another machine's public key (64 hex digits); returns its id.
    pub fn trust(&self, public: &str) -> Result<String, KeyError> {
        let path = self.dir.join(TRUSTED);
        let key = parse_public(public).ok_or_else(|| KeyError::Malformed {
            path: PathBuf::from(public),
            why: "not 64 hex digits of an Ed25519 public key".into(),
        })?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(io_err(&path))?;
        let id = key_id(&key);
        let file = path.join(format!("{id}.pub"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&file)
            .map_err(io_err(&file))?;
        writeln!(f, "{}", hex(key.as_bytes())).map_err(io_err(&file))?;
        f.sync_all().map_err(io_err(&file))?;
        Ok(id)
    }

    /// Stops trusting the key `id`; false if it was not trusted.
    pub fn untrust(&self, id: &str) -> Result<bool, KeyError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let file = self.dir.join(TRUSTED).join(format!("{id}.pub"));
        match fs::remove_file(&file) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&file)(e)),
        }
    }
}

fn parse_public(text: &str) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(&unhex::<32>(text)?).ok()
}

/// The public key as 64 hex digits (what `key trust` takes).
pub fn public_hex(key: &VerifyingKey) -> String {
    hex(key.as_bytes())
}

/// The signature line for the metadata whose BLAKE3 hash is `meta`.
pub fn sign(key: &SigningKey, meta: &blake3::Hash) -> String {
    let signature = key.sign(&signed_message(meta));
    format!(
        "{SCHEME} {} {}\n",
        key_id(&key.verifying_key()),
        hex(&signature.to_bytes())
    )
}

/// Checks the signature in `sig_path` over the metadata whose BLAKE3 hash
/// is `meta` against `trusted`; returns the id of the key that signed it.
pub fn verify(
    sig_path: &Path,
    meta: &blake3::Hash,
    trusted: &[VerifyingKey],
) -> Result<String, AuthError> {
    let bytes = read_bounded(sig_path, MAX_SIG_BYTES).map_err(|source| AuthError::Unsigned {
        path: sig_path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let malformed = || AuthError::Malformed {
        path: sig_path.to_path_buf(),
    };
    let mut words = text.split_ascii_whitespace();
    let (Some(SCHEME), Some(id), Some(signature), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(malformed());
    };
    let signature = Signature::from_bytes(&unhex::<64>(signature).ok_or_else(malformed)?);
    let Some(key) = trusted.iter().find(|k| key_id(k) == id) else {
        return Err(AuthError::Untrusted {
            path: sig_path.to_path_buf(),
            id: id.to_owned(),
        });
    };
    key.verify_strict(&signed_message(meta), &signature)
        .map_err(|_| AuthError::Altered {
            path: sig_path.to_path_buf(),
            id: id.to_owned(),
        })?;
    Ok(id.to_owned())
}

/// Reads a regular file of at most `max` bytes, not following a final
/// symbolic link: a FIFO, a device or a huge file is an error, never a
/// read that hangs or fills memory.
pub fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(io::Error::other(format!(
            "{len} bytes, more than the {max} such a file may hold"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::other("it grew while being read"));
    }
    Ok(bytes)
}

/// Opens a regular file for reading, refusing a final symbolic link and
/// anything that is not a regular file (a FIFO is opened non-blocking so
/// the open itself cannot hang).
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_keys(name: &str) -> (PathBuf, Keys) {
        let dir = std::env::temp_dir().join(format!("suspend-keys-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let keys = Keys::open(&dir).expect("key dir");
        (dir, keys)
    }

    #[test]
    fn a_signature_covers_every_byte() {
        let (dir, keys) = temp_keys("cover");
        let key = keys.signing().expect("key made");
        assert_eq!(
            key.to_bytes(),
            keys.signing().expect("key read").to_bytes(),
            "the key is made once and read back"
        );
        let meta = b"line one\nline two\n".to_vec();
        let sig = dir.join("meta.sig");
        fs::write(&sig, sign(&key, &blake3::hash(&meta))).expect("write");
        let trusted = keys.trusted().expect("trusted");
        assert_eq!(
            verify(&sig, &blake3::hash(&meta), &trusted).expect("verifies"),
            key_id(&key.verifying_key())
        );
        for i in 0..meta.len() {
            let mut changed = meta.clone();
            changed[i] ^= 1;
            assert!(
                matches!(
                    verify(&sig, &blake3::hash(&changed), &trusted),
                    Err(AuthError::Altered { .. })
                ),
                "byte {i} changed, still verified"
            );
        }
        let short = &meta[..meta.len() - 1];
        assert!(verify(&sig, &blake3::hash(short), &trusted).is_err());
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn only_trusted_keys_count() {
        let (dir, keys) = temp_keys("trust");
        let other = SigningKey::from_bytes(&[9u8; 32]);
        let meta = blake3::hash(b"meta");
        let sig = dir.join("meta.sig");
        fs::write(&sig, sign(&other, &meta)).expect("write");
        assert!(matches!(
            verify(&sig, &meta, &keys.trusted().expect("trusted")),
            Err(AuthError::Untrusted { .. })
        ));
        let id = keys
            .trust(&public_hex(&other.verifying_key()))
            .expect("trust");
        assert_eq!(id, key_id(&other.verifying_key()));
        assert_eq!(
            verify(&sig, &meta, &keys.trusted().expect("trusted")).expect("now trusted"),
            id
        );
        assert!(keys.untrust(&id).expect("untrust"));
        assert!(verify(&sig, &meta, &keys.trusted().expect("trusted")).is_err());
        assert!(keys.trust("not a key").is_err());
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn missing_or_odd_signature_files_are_refused() {
        let (dir, keys) = temp_keys("odd");
        let trusted = keys.trusted().expect("trusted");
        let sig = dir.join("meta.sig");
        assert!(matches!(
            verify(&sig, &blake3::hash(b"x"), &trusted),
            Err(AuthError::Unsigned { .. })
        ));
        fs::write(&sig, "ed25519 0011\n").expect("write");
        assert!(matches!(
            verify(&sig, &blake3::hash(b"x"), &trusted),
            Err(AuthError::Malformed { .. })
        ));
        fs::remove_file(&sig).expect("rm");
        nix::unistd::mkfifo(&sig, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("fifo");
        assert!(matches!(
            verify(&sig, &blake3::hash(b"x"), &trusted),
            Err(AuthError::Unsigned { .. })
        ));
        fs::remove_file(&sig).expect("rm");
        std::os::unix::fs::symlink(dir.join(SIGNING_KEY), &sig).expect("symlink");
        assert!(matches!(
            verify(&sig, &blake3::hash(b"x"), &trusted),
            Err(AuthError::Unsigned { .. })
        ));
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
