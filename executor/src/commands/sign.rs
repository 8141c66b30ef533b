//! Keys for `executor keygen` and `executor push --sign`: cosign's files, cosign's password
//! conventions (`COSIGN_PASSWORD`, else a prompt on the terminal).

use std::io::{Read as _, Write as _};

use std::path::Path;

use crate::error::Error;
use executor_image::sign::keys::MAX_KEY_FILE;
use executor_image::sign::{KeyError, SigningKey};

/// The password: `COSIGN_PASSWORD` if set (empty included), else asked on the terminal
/// (twice when `confirm`), else an error naming `what`.
fn password(what: &str, confirm: bool) -> Result<Vec<u8>, KeyError> {
    if let Some(value) = std::env::var_os("COSIGN_PASSWORD") {
        return Ok(value.into_encoded_bytes());
    }
    let no_password = || KeyError::NoPassword { what: what.to_owned() };
    let first = prompt(&format!("Enter password for {what}: ")).ok_or_else(no_password)?;
    if confirm {
        let again = prompt("Enter password again: ").ok_or_else(no_password)?;
        if again != first {
            return Err(KeyError::Format { what: what.to_owned(), detail: "the passwords do not match".into() });
        }
    }
    Ok(first)
}

/// Reads a password from the terminal with echo off; `None` without a terminal.
fn prompt(text: &str) -> Option<Vec<u8>> {
    rpassword::prompt_password(text).ok().map(String::into_bytes)
}

/// Reads a private key file (cosign's encrypted format or PKCS#8).
pub fn load_key(path: &Path) -> Result<SigningKey, Error> {
    let what = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::Usage(format!("cannot read the key `{what}`: {e}")))?;
    let mut text = String::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::RuleSet(Box::new(KeyError::Format { what: what.clone(), detail: e.to_string() })))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(Error::RuleSet(Box::new(KeyError::Format {
            what,
            detail: format!("it is larger than {} KiB", MAX_KEY_FILE >> 10),
        })));
    }
    SigningKey::from_pem(&text, &what, || password(&what, false)).map_err(|e| Error::RuleSet(Box::new(e)))
}

/// `executor keygen`: writes `<prefix>.key` (encrypted, `0600`) and `<prefix>.pub`, refusing
/// to overwrite either.
pub fn keygen(prefix: &str) -> Result<(), Error> {
    let (private, public) = (format!("{prefix}.key"), format!("{prefix}.pub"));
    for path in [&private, &public] {
        if Path::new(path).exists() {
            return Err(Error::Usage(format!(
                "`{path}` exists; executor keygen does not overwrite keys\n  fix: remove it, or pass another `--output-prefix`"
            )));
        }
    }
    let key = SigningKey::generate();
    let pass = password(&private, true).map_err(|e| Error::RuleSet(Box::new(e)))?;
    let write = |path: &str, text: &str, mode: u32| -> Result<(), Error> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(|e| Error::Usage(format!("cannot write `{path}`: {e}")))?;
        file.write_all(text.as_bytes()).map_err(|e| Error::Usage(format!("cannot write `{path}`: {e}")))
    };
    write(&private, &key.to_encrypted_pem(&pass), 0o600)?;
    write(&public, &key.public_key().to_pem(), 0o644)?;
    eprintln!("private key written to {private}\npublic key written to {public}");
    Ok(())
}
