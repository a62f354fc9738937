//! The head file: the chain's last (seq, MAC), tagged with the key, kept outside the
//! database and replaced atomically (temp file + rename) after every commit.
//!
//! It lets `verify` notice entries removed from the END of the chain, which the
//! chain alone cannot show. Format (text, one field per line):
//!
//! ```text
//! airlock-audit-head v1
//! seq <decimal>
//! mac <64 hex>
//! tag <64 hex>      HMAC(key, "airlock-audit/head/v1" 0x00 seq mac)
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::chain::{head_tag, mac_eq, AuditKey};
use crate::entry::Mac;
use crate::error::{Context, Result};

const MAGIC: &str = "airlock-audit-head v1";

/// A chain position: the last entry's seq and MAC (seq 0 = empty chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub mac: Mac,
}

impl ChainHead {
    pub const EMPTY: ChainHead = ChainHead {
        seq: 0,
        mac: Mac::GENESIS,
    };
}

/// What was found at the head path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadState {
    Missing,
    Valid(ChainHead),
    /// Unparsable, or the tag does not match the key.
    Invalid(String),
}

/// Reads and authenticates the head file. I/O errors other than "not found" are errors.
pub(crate) fn read_head(path: &Path, key: &AuditKey) -> Result<HeadState> {
    let text = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HeadState::Missing),
        Err(e) => return Err(e).ctx("read head file", path),
    };
    Ok(match parse(&text, key) {
        Ok(h) => HeadState::Valid(h),
        Err(reason) => HeadState::Invalid(reason),
    })
}

fn parse(bytes: &[u8], key: &AuditKey) -> std::result::Result<ChainHead, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err("missing header line".into());
    }
    let mut field = |name: &str| -> std::result::Result<String, String> {
        let line = lines.next().ok_or_else(|| format!("missing {name} line"))?;
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_owned)
            .ok_or_else(|| format!("expected {name} line, found {line:?}"))
    };
    let seq: u64 = field("seq")?
        .parse()
        .map_err(|_| "seq is not a number".to_owned())?;
    let mac = Mac::from_hex(&field("mac")?).ok_or_else(|| "mac is not 64 hex".to_owned())?;
    let tag = Mac::from_hex(&field("tag")?).ok_or_else(|| "tag is not 64 hex".to_owned())?;
    if !mac_eq(&tag, &head_tag(key, seq, &mac)) {
        return Err("tag does not match the key (tampered, or a different key)".into());
    }
    Ok(ChainHead { seq, mac })
}

/// Text of a head file for `head` under `key`.
pub(crate) fn render(head: &ChainHead, key: &AuditKey) -> String {
    format!(
        "{MAGIC}\nseq {}\nmac {}\ntag {}\n",
        head.seq,
        head.mac,
        head_tag(key, head.seq, &head.mac)
    )
}

/// Atomically replaces the head file: write `<path>.tmp`, optionally fsync, rename,
/// optionally fsync the directory.
pub(crate) fn write_head(path: &Path, key: &AuditKey, head: &ChainHead, sync: bool) -> Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = fs::File::create(&tmp).ctx("create head temp file", &tmp)?;
        f.write_all(render(head, key).as_bytes())
            .ctx("write head temp file", &tmp)?;
        if sync {
            f.sync_all().ctx("fsync head temp file", &tmp)?;
        }
    }
    fs::rename(&tmp, path).ctx("rename head file into place", path)?;
    if sync {
        sync_parent_dir(path)?;
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync head file directory", dir)
}

#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.head");
        let key = AuditKey::from_bytes([3; 32]);
        assert_eq!(read_head(&path, &key).unwrap(), HeadState::Missing);
        let h = ChainHead {
            seq: 42,
            mac: Mac([9; 32]),
        };
        write_head(&path, &key, &h, true).unwrap();
        assert_eq!(read_head(&path, &key).unwrap(), HeadState::Valid(h));
        // Other key → invalid.
        let other = AuditKey::from_bytes([4; 32]);
        assert!(matches!(
            read_head(&path, &other).unwrap(),
            HeadState::Invalid(_)
        ));
        // Edited seq → invalid.
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("seq 42", "seq 41");
        fs::write(&path, text).unwrap();
        assert!(matches!(
            read_head(&path, &key).unwrap(),
            HeadState::Invalid(_)
        ));
        // Garbage → invalid.
        fs::write(&path, b"\xff\xfe").unwrap();
        assert!(matches!(
            read_head(&path, &key).unwrap(),
            HeadState::Invalid(_)
        ));
    }
}
