//! `totebox keygen` and `totebox note verify`, and reading key arguments.

use std::path::Path;

/// Prints a new signer key string (line 1) and its verifier key string (line 2).
pub fn keygen(name: &str) -> Result<(), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("keygen: no randomness from the OS: {e}"))?;
    let signer = note::Signer::generate(name, &seed).map_err(|e| format!("keygen: {e}"))?;
    // Written, not println!: a closed stdout (`| head -n 1`) is an error, not a panic.
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}\n{}", signer.skey(), signer.verifier().vkey())
        .and_then(|()| out.flush())
        .map_err(|e| format!("keygen: stdout: {e}"))
}

/// A verifier key argument: the key string itself, or a file whose first line is one.
pub fn verifier_arg(arg: &str) -> Result<note::Verifier, String> {
    match note::Verifier::from_vkey(arg) {
        Ok(v) => Ok(v),
        Err(key_err) => {
            let path = Path::new(arg);
            if !crate::fsio::exists(path) {
                return Err(format!("--vkey {arg}: {key_err} (and no such file)"));
            }
            let text = read_text(path)?;
            let line = text.lines().next().unwrap_or("");
            note::Verifier::from_vkey(line.trim_end())
                .map_err(|e| format!("{}: {e}", path.display()))
        }
    }
}

/// The signer key in `path` (its first line).
pub fn signer_file(path: &Path) -> Result<note::Signer, String> {
    let text = read_text(path)?;
    let line = text.lines().next().unwrap_or("");
    note::Signer::from_skey(line.trim_end()).map_err(|e| format!("{}: {e}", path.display()))
}

/// A key file: at most [`crate::fsio::MAX_KEY_FILE`] bytes of a regular file, UTF-8.
fn read_text(path: &Path) -> Result<String, String> {
    let bytes = crate::fsio::read_file(path, crate::fsio::MAX_KEY_FILE)?;
    String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))
}

/// Verifies the note in `file` against `vkeys`, printing each name whose signature verified.
pub fn note_verify(file: &Path, vkeys: &[String]) -> Result<(), String> {
    let verifiers = vkeys
        .iter()
        .map(|k| verifier_arg(k))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = crate::fsio::read_file(file, crate::fsio::MAX_NOTE)?;
    let parsed = note::Note::parse(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let verified = parsed
        .verify(&verifiers)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    // One name per line, in signature order: scripts compare this output.
    for v in verified {
        println!("{}", v.name);
    }
    Ok(())
}
