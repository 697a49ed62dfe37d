//! The state folder's files: the signing keys and tokens `mcp-obo dev` keeps are readable by
//! their owner only from the moment they exist (created with mode 0600, never created with
//! the umask's mode and narrowed after the write), in a folder only its owner can enter
//! (0700; a looser existing folder is tightened, with a warning).

use std::io::Write;
use std::path::Path;

/// The mode of every file written here.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;
/// The mode of the state folder.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and its parents) with mode 0700, or tightens an existing one that others
/// may read or enter.
///
/// # Errors
/// When the folder cannot be created or its mode changed.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(DIR_MODE);
        builder.create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %dir.display(),
                mode = format!("{mode:o}"),
                "the dev state folder was open to other users; its mode is now 700"
            );
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

/// Writes `bytes` to a new file at `path` readable by its owner only: whatever was there is
/// removed first, and the new file is created exclusively with mode 0600 (a link planted at
/// `path` is not followed).
///
/// # Errors
/// When the old file cannot be removed or the new one written.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Narrows an existing key file others may read to 0600 (state folders from before the
/// files were created private).
///
/// # Errors
/// When the mode cannot be read or changed.
pub fn tighten(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "a dev key file was readable by other users; its mode is now 600"
            );
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    /// A file anyone may read, as a state folder from before could hold.
    fn world_readable(path: &Path, contents: &[u8]) {
        std::fs::write(path, contents).expect("old file");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }

    #[test]
    fn key_files_are_created_0600_in_a_0700_folder() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("state").join("nested");
        private_dir(&dir).expect("state folder");
        assert_eq!(mode(&dir), 0o700);
        let key = dir.join("key.pk8");
        write_private(&key, b"secret").expect("write");
        assert_eq!(mode(&key), 0o600);
        assert_eq!(std::fs::read(&key).expect("read"), b"secret");
    }

    #[test]
    fn an_existing_world_readable_file_is_replaced_by_a_private_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("key.pk8");
        world_readable(&key, b"old, longer content");
        write_private(&key, b"new").expect("write");
        assert_eq!(mode(&key), 0o600);
        assert_eq!(std::fs::read(&key).expect("read"), b"new");
    }

    #[test]
    fn a_link_planted_where_a_key_goes_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().expect("temp dir");
        let elsewhere = dir.path().join("readable-by-others.txt");
        world_readable(&elsewhere, b"untouched");
        let key = dir.path().join("key.pk8");
        std::os::unix::fs::symlink(&elsewhere, &key).expect("symlink");
        write_private(&key, b"secret").expect("write");
        assert_eq!(std::fs::read(&elsewhere).expect("read"), b"untouched");
        assert!(std::fs::symlink_metadata(&key).expect("metadata").is_file());
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&elsewhere), 0o644);
    }

    #[test]
    fn a_looser_existing_folder_and_key_are_tightened() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("state");
        std::fs::create_dir(&dir).expect("folder");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        private_dir(&dir).expect("state folder");
        assert_eq!(mode(&dir), 0o700);
        let key = dir.join("key.pk8");
        world_readable(&key, b"k");
        tighten(&key).expect("tighten");
        assert_eq!(mode(&key), 0o600);
    }
}
