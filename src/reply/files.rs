//! The `file` transport: each outgoing mail as `<dir>/<id>-<server-trid>.eml`.
//!
//! Input: claimed outbox mails and the outbox directory. Output: one result
//! per mail, in order. Invariants: a mail's file appears under its final
//! name only whole and durable (written under a temporary name, synced,
//! renamed, the directory synced) before its row may be marked delivered;
//! a mail that could not be made durable is reported as failed and stays
//! queued; file names are ours (row id and server-trid), never taken from
//! input.

use crate::store::OutboxMail;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

/// Writes each mail to `<dir>/<id>-<server-trid>.eml`, atomically and
/// durably: every file is written under a temporary name, all are made
/// durable ([`sync_written`]), renamed, and the directory is synced once
/// before any row is marked delivered.
pub(super) fn write_files(dir: &Path, mails: &[OutboxMail]) -> Vec<Result<(), String>> {
    // Opened before the files are written: on Linux 5.8 and later `syncfs`
    // on it reports every writeback error of the file system since then.
    let handle = std::fs::create_dir_all(dir).and_then(|()| File::open(dir));
    let handle = match handle {
        Ok(h) => h,
        Err(e) => return mails.iter().map(|_| Err(e.to_string())).collect(),
    };
    let written: Vec<std::io::Result<(File, String)>> =
        mails.iter().map(|m| write_temporary(dir, m)).collect();
    let files: Vec<&File> = written.iter().flatten().map(|(f, _)| f).collect();
    let together = files.len() > 1 && group_sync(&handle);
    let mut synced = sync_written(&handle, &files, together).into_iter();
    let mut results: Vec<Result<(), String>> = written
        .iter()
        .map(|w| match w {
            Err(e) => Err(e.to_string()),
            Ok((_, name)) => match synced.next() {
                Some(Ok(())) => std::fs::rename(dir.join(format!(".{name}.tmp")), dir.join(name))
                    .map_err(|e| e.to_string()),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("not synced".into()),
            },
        })
        .collect();
    // The new names are durable before the rows are marked delivered.
    if let Err(e) = handle.sync_all() {
        for r in &mut results {
            *r = Err(e.to_string());
        }
    }
    results
}

/// Writes one mail under its temporary name; the file and its final name.
fn write_temporary(dir: &Path, mail: &OutboxMail) -> std::io::Result<(File, String)> {
    let trid: String = mail
        .server_trid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let name = format!("{:08}-{trid}.eml", mail.id);
    // One temporary name per row (its claim lets one run at a time write
    // it): a run killed mid-write leaves at most this file, and the
    // redelivery after the lease truncates, rewrites and renames it.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join(format!(".{name}.tmp")))?;
    file.write_all(&mail.message)?;
    Ok((file, name))
}

/// Makes the written files durable; one result per file, in order.
/// `together`: by one `syncfs(2)` of their file system, one writeback pass
/// and one device flush for the whole group, where one `fsync` per file
/// costs a flush and a wakeup each (decision 95); if `syncfs` fails, and
/// otherwise, each file is synced alone, so that only a file that cannot be
/// made durable is deferred.
fn sync_written(dir: &File, files: &[&File], together: bool) -> Vec<std::io::Result<()>> {
    if together {
        match sync_file_system(dir) {
            Ok(()) => return files.iter().map(|_| Ok(())).collect(),
            Err(e) => tracing::debug!(error = %e, "syncfs failed; syncing file by file"),
        }
    }
    files.iter().map(|f| f.sync_all()).collect()
}

/// Whether one `syncfs` may stand for an `fsync` of each file in `dir`:
/// only where it reports the files' writeback errors (Linux 5.8 and later;
/// before, it returned success whatever failed) and on a local file system
/// whose `syncfs` is known to write back and flush everything (ext2/3/4,
/// XFS, Btrfs, F2FS, tmpfs). Elsewhere (FUSE, network and overlay file
/// systems, unknown ones) each file gets its own `fsync`.
fn group_sync(dir: &File) -> bool {
    static ERRORS_REPORTED: OnceLock<bool> = OnceLock::new();
    *ERRORS_REPORTED.get_or_init(syncfs_reports_errors) && known_local(dir)
}

#[cfg(target_os = "linux")]
fn syncfs_reports_errors() -> bool {
    let uname = rustix::system::uname();
    let release = uname.release().to_string_lossy();
    kernel_at_least(&release, (5, 8))
}

#[cfg(not(target_os = "linux"))]
fn syncfs_reports_errors() -> bool {
    false
}

/// Whether a kernel release such as `6.1.0-18-amd64` is at least `min`.
fn kernel_at_least(release: &str, min: (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) >= min,
        _ => false,
    }
}

/// The file systems (`statfs` magic numbers, linux/magic.h) whose `syncfs`
/// writes back every dirty file and flushes the device.
const KNOWN_LOCAL: [i128; 5] = [
    0xEF53,      // ext2, ext3, ext4
    0x5846_5342, // XFS
    0x9123_683E, // Btrfs
    0xF2F5_2010, // F2FS
    0x0102_1994, // tmpfs
];

#[cfg(target_os = "linux")]
fn known_local(dir: &File) -> bool {
    rustix::fs::fstatfs(dir).is_ok_and(|s| KNOWN_LOCAL.contains(&i128::from(s.f_type)))
}

#[cfg(not(target_os = "linux"))]
fn known_local(_dir: &File) -> bool {
    false
}

/// `syncfs(2)` on the file system holding `dir`.
#[cfg(target_os = "linux")]
fn sync_file_system(dir: &File) -> std::io::Result<()> {
    rustix::fs::syncfs(dir).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn sync_file_system(_dir: &File) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(id: i64) -> OutboxMail {
        OutboxMail {
            id,
            server_trid: format!("RM-{id}"),
            recipient: "hostmaster@alpine-domains.test".into(),
            message: format!("mail {id}\r\n").into_bytes(),
            attempts: 0,
            delivered: None,
            last_error: None,
            capped: false,
        }
    }

    /// One mail and a group (synced together) end the same way: each under
    /// its final name with its bytes, no temporary file left.
    #[test]
    fn one_mail_and_a_group_are_written_whole() {
        for count in [1, 5] {
            let dir = tempfile::tempdir().expect("dir");
            let outbox = dir.path().join("outbox");
            let mails: Vec<OutboxMail> = (1..=count).map(mail).collect();
            let results = write_files(&outbox, &mails);
            assert!(results.iter().all(Result::is_ok), "{results:?}");
            let mut names: Vec<String> = std::fs::read_dir(&outbox)
                .expect("outbox")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let expected: Vec<String> = (1..=count).map(|i| format!("{i:08}-RM{i}.eml")).collect();
            assert_eq!(names, expected);
            for (m, name) in mails.iter().zip(&names) {
                assert_eq!(std::fs::read(outbox.join(name)).expect("file"), m.message);
            }
        }
    }

    /// A mail whose file cannot be written fails alone: the others of its
    /// group are synced together and delivered under their own names.
    #[test]
    fn a_mail_that_cannot_be_written_fails_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let outbox = dir.path().join("outbox");
        // A directory where mail 2's temporary file would go.
        std::fs::create_dir_all(outbox.join(".00000002-RM2.eml.tmp")).expect("blocker");
        let results = write_files(&outbox, &[mail(1), mail(2), mail(3)]);
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(results[1].is_err());
        for (id, name) in [(1, "00000001-RM1.eml"), (3, "00000003-RM3.eml")] {
            assert_eq!(
                std::fs::read(outbox.join(name)).expect("file"),
                mail(id).message
            );
        }
        assert!(!outbox.join("00000002-RM2.eml").exists());
    }

    /// Synced together or one by one, every file gets its result.
    #[test]
    fn files_are_synced_one_by_one_or_together() {
        let dir = tempfile::tempdir().expect("dir");
        let handle = File::open(dir.path()).expect("dir");
        let files: Vec<File> = (0..3)
            .map(|i| File::create(dir.path().join(format!("f{i}"))).expect("file"))
            .collect();
        let refs: Vec<&File> = files.iter().collect();
        for together in [false, true] {
            let results = sync_written(&handle, &refs, together);
            assert_eq!(results.len(), 3);
            assert!(results.iter().all(Result::is_ok), "{results:?}");
        }
    }

    #[test]
    fn kernel_releases_are_compared_by_major_and_minor() {
        for (release, new_enough) in [
            ("6.1.0-18-amd64", true),
            ("5.8.0", true),
            ("5.15.0-101-generic", true),
            ("5.4.0-150-generic", false),
            ("4.19.0-26-amd64", false),
            ("5", false),
            ("unknown", false),
        ] {
            assert_eq!(kernel_at_least(release, (5, 8)), new_enough, "{release}");
        }
    }

    /// A directory that cannot be made fails every mail of the group.
    #[test]
    fn an_outbox_that_cannot_be_made_defers_every_mail() {
        let dir = tempfile::tempdir().expect("dir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").expect("file");
        let results = write_files(&blocker.join("outbox"), &[mail(1), mail(2)]);
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(Result::is_err));
    }
}
