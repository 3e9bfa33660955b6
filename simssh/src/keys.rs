//! Public keys a node accepts: OpenSSH `authorized_keys` lines (options before the key type are
//! skipped), bounded in size and count.

pub use russh::keys::PublicKey;

/// Bytes of an `authorized_keys` file read.
pub const MAX_AUTHORIZED_KEYS_BYTES: usize = 256 << 10;
/// Keys taken from one file.
pub const MAX_KEYS: usize = 256;

/// The keys of `text` (`authorized_keys` format); malformed lines are skipped.
pub fn parse_authorized_keys(text: &str) -> Vec<PublicKey> {
    let text = &text.as_bytes()[..text.len().min(MAX_AUTHORIZED_KEYS_BYTES)];
    String::from_utf8_lossy(text)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| is_key_type(w))?;
            russh::keys::parse_public_key_base64(words.get(at + 1)?).ok()
        })
        .take(MAX_KEYS)
        .collect()
}

/// True for an OpenSSH key type name.
fn is_key_type(word: &str) -> bool {
    word.starts_with("ssh-") || word.starts_with("ecdsa-sha2-") || word.starts_with("sk-")
}

/// True when `key` is one of `keys` (same key data, comments ignored).
pub fn accepts(keys: &[PublicKey], key: &PublicKey) -> bool {
    keys.iter().any(|k| k.key_data() == key.key_data())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHwcNQkcTTBJgY+fGJQ9yN4QKiSJv+rm4p7sKSS8hVAo";

    #[test]
    fn options_comments_and_garbage() {
        let text = format!(
            "# a comment\n\nssh-ed25519 {KEY} alice@host\nfrom=\"10.0.0.1\",no-pty ssh-ed25519 {KEY} bob\nssh-ed25519 not-base64\ngarbage\n"
        );
        let keys = parse_authorized_keys(&text);
        assert_eq!(keys.len(), 2);
        assert!(accepts(&keys, &keys[1]));
        assert!(parse_authorized_keys(&"x".repeat(MAX_AUTHORIZED_KEYS_BYTES * 2)).is_empty());
    }
}
