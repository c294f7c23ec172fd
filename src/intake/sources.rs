//! Where mails come from: the MTA's pipe (read with a bound: a mail over the
//! size limit is drained, not kept), and for `replay` `.eml` files,
//! directories of them (in name order), maildirs (`cur/` and `new/`) and
//! mbox files.

use mail_parser::mailbox::mbox::MessageIterator;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One mail to replay, with a name for the summary.
#[derive(Debug, Clone)]
pub struct MailSource {
    /// Where it came from (file, or mbox file and index).
    pub name: String,
    /// The raw message.
    pub raw: Vec<u8>,
}

/// Reads one mail from `input`, keeping at most `max_bytes + 1` bytes: the
/// rest of a larger mail is read and dropped (the MTA must see its pipe
/// drained), so memory stays bounded and the mail is still refused (4014).
pub fn read_bounded(mut input: impl Read, max_bytes: usize) -> std::io::Result<Vec<u8>> {
    let keep = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut raw = Vec::new();
    (&mut input).take(keep).read_to_end(&mut raw)?;
    std::io::copy(&mut input, &mut std::io::sink())?;
    Ok(raw)
}

/// Expands paths into mails, in a stable order.
pub fn collect_sources(paths: &[PathBuf]) -> std::io::Result<Vec<MailSource>> {
    let mut out = Vec::new();
    for path in paths {
        collect(path, &mut out)?;
    }
    Ok(out)
}

fn collect(path: &Path, out: &mut Vec<MailSource>) -> std::io::Result<()> {
    if path.is_dir() {
        if path.join("cur").is_dir() && path.join("new").is_dir() {
            for sub in ["new", "cur"] {
                collect_dir(&path.join(sub), out)?;
            }
            return Ok(());
        }
        return collect_dir(path, out);
    }
    let data = std::fs::read(path)?;
    if data.starts_with(b"From ") {
        for (i, msg) in MessageIterator::new(std::io::Cursor::new(data)).enumerate() {
            let msg =
                msg.map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad mbox"))?;
            out.push(MailSource {
                name: format!("{}#{}", path.display(), i + 1),
                raw: msg.unwrap_contents(),
            });
        }
    } else {
        out.push(MailSource {
            name: path.display().to_string(),
            raw: data,
        });
    }
    Ok(())
}

fn collect_dir(dir: &Path, out: &mut Vec<MailSource>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if entry.is_dir()
            || name.ends_with(".eml")
            || name.ends_with(".mbox")
            || dir.ends_with("cur")
            || dir.ends_with("new")
        {
            collect(&entry, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::read_bounded;

    #[test]
    fn a_large_mail_is_drained_but_not_kept() {
        let big = vec![b'x'; 1 << 20];
        let mut input = std::io::Cursor::new(big);
        let raw = read_bounded(&mut input, 1000).unwrap();
        assert_eq!(raw.len(), 1001);
        assert_eq!(input.position(), 1 << 20);
        let small = read_bounded(&b"Subject: x\n\nbody"[..], 1000).unwrap();
        assert_eq!(small, b"Subject: x\n\nbody");
    }
}
