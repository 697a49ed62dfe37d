//! [`FakeAzCli`]: a fake Azure CLI for the local developer credential.

/// A directory holding a fake Azure CLI (`az`) that answers `account get-access-token`
/// with `token`, checking the arguments the credential passes, and logs each call.
pub struct FakeAzCli {
    pub dir: tempfile::TempDir,
}

impl FakeAzCli {
    pub fn new(token: &str, expected_scope: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("calls.log");
        let script = format!(
            r#"#!/bin/sh
# Fake Azure CLI: only `az account get-access-token -o json --scope <scope>`.
echo "$@" >> '{log}'
if [ "$1 $2" != "account get-access-token" ]; then echo "ERROR: unexpected command: $*" >&2; exit 2; fi
scope=""
while [ $# -gt 0 ]; do
  case "$1" in --scope) scope="$2"; shift;; esac
  shift
done
if [ "$scope" != '{expected_scope}' ]; then echo "ERROR: unexpected scope $scope" >&2; exit 1; fi
exp=$(( $(date +%s) + 3600 ))
printf '{{"accessToken":"{token}","expiresOn":"2099-01-01 00:00:00.000000","expires_on":%s,"subscription":"s","tenant":"t","tokenType":"Bearer"}}\n' "$exp"
"#,
            log = log.display()
        );
        let path = dir.path().join("az");
        std::fs::write(&path, script).expect("write fake az");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("make fake az executable");
        }
        Self { dir }
    }

    /// How many times the fake CLI was run.
    pub fn calls(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("calls.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// A PATH with this directory first.
    pub fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}
