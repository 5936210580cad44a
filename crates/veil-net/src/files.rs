//! File helpers: reads bounded before allocation, atomic replacement, and
//! owner-only files for keys.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Result, bad_file, io_err};

/// Reads a whole file, refusing one larger than `cap` bytes before reading.
///
/// # Errors
/// [`crate::Error::Io`] or [`crate::Error::BadFile`] naming the file.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    if len > cap {
        return Err(bad_file(
            path,
            format!("is {len} bytes, more than the {cap} allowed"),
        ));
    }
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // `take` guards against a file that grows while it is read.
    file.take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(io_err(path))?;
    if out.len() as u64 > cap {
        return Err(bad_file(path, "grew past its size cap while being read"));
    }
    Ok(out)
}

/// A file's bytes, or none if it does not exist (a ledger not yet
/// started).
///
/// # Errors
/// [`crate::Error::Io`] naming the file for any other failure.
pub fn read_if_present(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Appends `bytes` to the file at `path` (created if missing), flushes and
/// syncs it: a ledger line is on disk before what it records is released.
///
/// # Errors
/// [`crate::Error::Io`] naming the file.
pub fn append_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))?;
    file.flush().map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

/// As [`read_capped`], as UTF-8 text.
///
/// # Errors
/// As [`read_capped`]; [`crate::Error::BadFile`] if the file is not UTF-8.
pub fn read_capped_string(path: &Path, cap: u64) -> Result<String> {
    String::from_utf8(read_capped(path, cap)?).map_err(|_| bad_file(path, "is not UTF-8 text"))
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it is
/// written and synced, renamed over `path`, and the directory synced, so a
/// crash leaves either the old file or the new one. `private` files are
/// created readable by their owner only.
///
/// # Errors
/// [`crate::Error::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| bad_file(path, "is not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut file = create(&tmp, private)?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    // The rename is durable once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok(())
}

/// Creates a new file, failing if it exists; `private` files are owner-only.
///
/// # Errors
/// [`crate::Error::Io`] naming the file (also if it already exists).
pub fn create_new(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    set_mode(&mut options, private);
    let mut file = options.open(path).map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

fn create(path: &Path, private: bool) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    set_mode(&mut options, private);
    options.open(path).map_err(io_err(path))
}

#[cfg(unix)]
fn set_mode(options: &mut OpenOptions, private: bool) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(if private { 0o600 } else { 0o644 });
}

#[cfg(not(unix))]
fn set_mode(_options: &mut OpenOptions, _private: bool) {}
