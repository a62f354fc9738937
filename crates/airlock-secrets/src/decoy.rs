//! Decoys (tripwires): random values shaped like real credentials, handed to a sandbox as if they
//! were secrets, so that one turning up where it should not shows that something went after them.

use crate::error::{Error, Result};

/// The shape of a decoy value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecoyKind {
    /// `ghp_` + 30 random base62 characters + their 6-character CRC32 checksum (the layout
    /// of GitHub's classic personal access tokens), 40 characters.
    GitHubToken,
    /// `sk-proj-` + 64 characters of `[A-Za-z0-9_-]`.
    OpenAiKey,
    /// `sk-ant-api03-` + 93 characters of `[A-Za-z0-9_-]` + `AA`.
    AnthropicKey,
    /// `AKIA` + 16 characters of `[A-Z2-7]`.
    AwsAccessKeyId,
    /// 40 characters of `[A-Za-z0-9/+]`.
    AwsSecretAccessKey,
    /// `xoxb-` + 12 digits + `-` + 13 digits + `-` + 24 alphanumerics.
    SlackToken,
    /// 24 alphanumerics: a password or an unspecified API key.
    Password,
}

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const KEY: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const AWS_SECRET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz/+";
const DIGITS: &[u8] = b"0123456789";

impl DecoyKind {
    /// A kind that fits an environment variable's name (`GITHUB_TOKEN`, `AWS_ACCESS_KEY_ID`,
    /// `OPENAI_API_KEY`…); [`DecoyKind::Password`] when none does.
    pub fn for_name(name: &str) -> DecoyKind {
        let n = name.to_ascii_uppercase();
        if n.contains("GITHUB") || n.starts_with("GH_") {
            DecoyKind::GitHubToken
        } else if n.contains("AWS") && n.contains("ACCESS_KEY_ID") {
            DecoyKind::AwsAccessKeyId
        } else if n.contains("AWS") {
            DecoyKind::AwsSecretAccessKey
        } else if n.contains("ANTHROPIC") || n.contains("CLAUDE") {
            DecoyKind::AnthropicKey
        } else if n.contains("OPENAI") {
            DecoyKind::OpenAiKey
        } else if n.contains("SLACK") {
            DecoyKind::SlackToken
        } else {
            DecoyKind::Password
        }
    }
}

/// A fresh random decoy value of `kind` (from the operating system's random source). Register
/// it with [`RedactorBuilder::decoy`](crate::RedactorBuilder::decoy) or
/// [`SharedRedactor::learn_decoy`](crate::SharedRedactor::learn_decoy) before handing it out.
///
/// ```
/// use airlock_secrets::{generate_decoy, DecoyKind, Redactor};
///
/// let value = generate_decoy(DecoyKind::GitHubToken)?;
/// assert!(value.starts_with("ghp_") && value.len() == 40);
/// let r = Redactor::builder().decoy("GITHUB_TOKEN", &value).build();
/// assert_eq!(r.find_decoy(&format!("token={value}")), Some("GITHUB_TOKEN"));
/// assert_eq!(r.redact(&value), "[redacted:GITHUB_TOKEN]");
/// # Ok::<(), airlock_secrets::Error>(())
/// ```
pub fn generate_decoy(kind: DecoyKind) -> Result<String> {
    Ok(match kind {
        DecoyKind::GitHubToken => {
            let body = random_string(ALNUM, 30)?;
            let checksum = base62_padded(crc32(body.as_bytes()), 6);
            format!("ghp_{body}{checksum}")
        }
        DecoyKind::OpenAiKey => format!("sk-proj-{}", random_string(KEY, 64)?),
        DecoyKind::AnthropicKey => format!("sk-ant-api03-{}AA", random_string(KEY, 93)?),
        DecoyKind::AwsAccessKeyId => format!("AKIA{}", random_string(BASE32, 16)?),
        DecoyKind::AwsSecretAccessKey => random_string(AWS_SECRET, 40)?,
        DecoyKind::SlackToken => format!(
            "xoxb-{}-{}-{}",
            random_string(DIGITS, 12)?,
            random_string(DIGITS, 13)?,
            random_string(ALNUM, 24)?
        ),
        DecoyKind::Password => random_string(ALNUM, 24)?,
    })
}

/// `len` characters drawn uniformly from `alphabet` (at most 256 entries).
fn random_string(alphabet: &[u8], len: usize) -> Result<String> {
    let n = alphabet.len();
    if n == 0 || n > 256 {
        return Err(Error::Random(format!("bad alphabet size {n}")));
    }
    // Bytes at or above the largest multiple of `n` are rejected, so every character is equally
    // likely.
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
        for b in buf {
            let b = usize::from(b);
            if b < limit && out.len() < len {
                out.push(char::from(alphabet[b % n]));
            }
        }
    }
    Ok(out)
}

/// CRC-32 (IEEE 802.3, as zlib's `crc32`).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// `n` in base 62 (`0-9A-Za-z`), left-padded with `0` to `width` characters.
fn base62_padded(mut n: u32, width: usize) -> String {
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(ALNUM[(n % 62) as usize]);
        n /= 62;
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.iter().rev().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        // zlib.crc32(b"123456789") == 0xCBF43926, the standard check value.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn base62() {
        assert_eq!(base62_padded(0, 6), "000000");
        assert_eq!(base62_padded(61, 6), "00000z");
        assert_eq!(base62_padded(62, 6), "000010");
        assert_eq!(base62_padded(u32::MAX, 6), "4gfFC3");
    }

    #[test]
    fn every_kind_has_its_shape() {
        let all = [
            DecoyKind::GitHubToken,
            DecoyKind::OpenAiKey,
            DecoyKind::AnthropicKey,
            DecoyKind::AwsAccessKeyId,
            DecoyKind::AwsSecretAccessKey,
            DecoyKind::SlackToken,
            DecoyKind::Password,
        ];
        for kind in all {
            let a = generate_decoy(kind).unwrap();
            let b = generate_decoy(kind).unwrap();
            assert_ne!(a, b, "{kind:?}");
            assert!(a.is_ascii());
        }
        let gh = generate_decoy(DecoyKind::GitHubToken).unwrap();
        assert_eq!(gh.len(), 40);
        assert_eq!(&gh[34..], base62_padded(crc32(&gh.as_bytes()[4..34]), 6));
        assert_eq!(generate_decoy(DecoyKind::AwsAccessKeyId).unwrap().len(), 20);
        assert_eq!(
            generate_decoy(DecoyKind::AnthropicKey).unwrap().len(),
            13 + 93 + 2
        );
    }

    #[test]
    fn kinds_for_names() {
        assert_eq!(DecoyKind::for_name("GITHUB_TOKEN"), DecoyKind::GitHubToken);
        assert_eq!(DecoyKind::for_name("GH_TOKEN"), DecoyKind::GitHubToken);
        assert_eq!(
            DecoyKind::for_name("AWS_ACCESS_KEY_ID"),
            DecoyKind::AwsAccessKeyId
        );
        assert_eq!(
            DecoyKind::for_name("AWS_SECRET_ACCESS_KEY"),
            DecoyKind::AwsSecretAccessKey
        );
        assert_eq!(DecoyKind::for_name("OPENAI_API_KEY"), DecoyKind::OpenAiKey);
        assert_eq!(DecoyKind::for_name("DB_PASSWORD"), DecoyKind::Password);
    }
}
