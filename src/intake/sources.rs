//! Where `replay` reads mails from: `.eml` files, directories of them (in
//! name order), maildirs (`cur/` and `new/`) and mbox files.

use mail_parser::mailbox::mbox::MessageIterator;
use std::path::{Path, PathBuf};

/// One mail to replay, with a name for the summary.
#[derive(Debug, Clone)]
pub struct MailSource {
    /// Where it came from (file, or mbox file and index).
    pub name: String,
    /// The raw message.
    pub raw: Vec<u8>,
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
