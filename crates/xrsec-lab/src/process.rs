//! Processes, names and directories owned by a lab.
//!
//! Everything here is a guard: a [`LabChild`] is stopped and reaped when
//! dropped, a [`LabDir`] is removed. Names carry the test process's pid and a
//! per-process counter ([`unique_tag`]), so parallel tests in one binary, and
//! several test binaries at once, never pick the same namespace or directory,
//! and a leftover of a crashed run can be recognised by its dead pid
//! ([`sweep_stale`]).

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::{LabError, Result};

/// Prefix of every network namespace a lab creates (`xlab-PID-N-ROLE`).
pub const NAMESPACE_PREFIX: &str = "xlab-";
/// Prefix of every temporary directory a lab creates (`xrsec-lab-PID-N`).
pub const DIR_PREFIX: &str = "xrsec-lab-";
/// When set (to anything), temporary directories are kept after the lab ends
/// so that logs and captures can be read; their paths are printed on stderr.
pub const KEEP_ENV: &str = "XRSEC_LAB_KEEP";

/// `PID-N`: unique within this machine while this process lives.
pub fn unique_tag() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// Runs `cmd` to completion with its output captured, killing it after
/// `timeout`. The exit status is not checked (see [`check`]).
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let what = describe(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| LabError::new(format!("cannot run {what}: {e}")))?;
    // Pipes are drained by threads so that a chatty child never blocks on a
    // full pipe while we poll for its exit.
    let out_reader = drain(child.stdout.take());
    let err_reader = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                // The reader threads are left behind: a grandchild may still
                // hold the pipes open.
                return Err(LabError::new(format!(
                    "{what} did not finish within {timeout:?}"
                )));
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(LabError::new(format!("waiting for {what}: {e}"))),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Turns a non-zero exit into an error carrying the command and its stderr;
/// returns stdout as text otherwise.
pub fn check(what: &str, output: Output) -> Result<String> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(LabError::new(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            tail_of(&String::from_utf8_lossy(&output.stdout), 20),
        )))
    }
}

/// Runs a command on the host (not in a namespace) and checks its status.
pub fn run_checked(argv: &[&str], timeout: Duration) -> Result<String> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| LabError::new("empty command line"))?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    let output = run_with_timeout(&mut cmd, timeout)?;
    check(&argv.join(" "), output)
}

pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// The last `lines` lines of `text`, prefixed by a newline, or nothing.
pub(crate) fn tail_of(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    if all.is_empty() {
        return String::new();
    }
    let start = all.len().saturating_sub(lines);
    format!("\n{}", all[start..].join("\n"))
}

/// A signal the lab sends to its own children (through `kill(1)`, so that
/// this crate needs no `unsafe`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// SIGINT: how tshark is told to flush its capture and exit.
    Interrupt,
    /// SIGTERM: orderly shutdown (charon, iperf3, xrsecd).
    Terminate,
    /// SIGHUP: xrsecd reloads its configuration.
    Hangup,
    /// SIGKILL: a crash, as far as the peer can tell.
    Kill,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "INT",
            Signal::Terminate => "TERM",
            Signal::Hangup => "HUP",
            Signal::Kill => "KILL",
        }
    }
}

/// A background process of the lab, stopped and reaped on drop.
///
/// Invariant: while `child` has not been reaped its pid cannot be reused, so
/// signalling it is safe; after reaping nothing is signalled.
#[derive(Debug)]
pub struct LabChild {
    child: Child,
    what: String,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl LabChild {
    /// Starts `cmd` with stdin closed and stdout/stderr appended to `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> Result<LabChild> {
        let what = describe(&cmd);
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| LabError::new(format!("cannot open {}: {e}", log.display())))?;
        let file2 = file
            .try_clone()
            .map_err(|e| LabError::new(format!("cannot dup {}: {e}", log.display())))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(file2));
        let child = cmd
            .spawn()
            .map_err(|e| LabError::new(format!("cannot start {what}: {e}")))?;
        Ok(LabChild {
            child,
            what,
            log: log.to_path_buf(),
            status: None,
        })
    }

    /// The process id (of the program itself: `ip netns exec` and `unshare`
    /// exec rather than fork).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where its stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// What it prints, so far.
    pub fn output(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Its exit status if it has ended (and reaps it).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(|e| LabError::new(format!("waiting for {}: {e}", self.what)))?;
        }
        Ok(self.status)
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for it to end by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` if it still runs.
    pub fn signal(&mut self, signal: Signal) -> Result<()> {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = self.pid().to_string();
        run_checked(&["kill", "-s", signal.name(), &pid], Duration::from_secs(5)).map(drop)
    }

    /// Sends `signal`, waits up to `grace`, then kills it; always reaps.
    pub fn stop_with(&mut self, signal: Signal, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        let _ = self.signal(signal);
        if let Some(status) = self.wait_timeout(grace)? {
            return Ok(status);
        }
        let _ = self.child.kill();
        let status = self
            .child
            .wait()
            .map_err(|e| LabError::new(format!("reaping {}: {e}", self.what)))?;
        self.status = Some(status);
        Ok(status)
    }

    /// SIGTERM, two seconds, SIGKILL.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.stop_with(Signal::Terminate, Duration::from_secs(2))
    }
}

impl Drop for LabChild {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A temporary directory of the lab, removed on drop unless `XRSEC_LAB_KEEP`
/// is set.
#[derive(Debug)]
pub struct LabDir {
    path: PathBuf,
}

impl LabDir {
    /// Creates `$TMPDIR/xrsec-lab-PID-N-LABEL`.
    pub fn new(label: &str) -> Result<LabDir> {
        let path = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{label}", unique_tag()));
        if path.exists() {
            let _ = fs::remove_dir_all(&path);
        }
        fs::create_dir_all(&path)
            .map_err(|e| LabError::new(format!("cannot create {}: {e}", path.display())))?;
        Ok(LabDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LabDir {
    fn drop(&mut self) {
        if std::env::var_os(KEEP_ENV).is_some() {
            eprintln!("xrsec-lab: keeping {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The pid embedded in a lab name (`PREFIX` then `PID-...`).
pub(crate) fn pid_of_name(name: &str, prefix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?.split('-').next()?.parse().ok()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the namespaces and directories left by lab processes that no
/// longer exist (a crashed or killed test run), killing what still runs in
/// those namespaces. Labs of live processes are left alone.
pub fn sweep_stale() {
    if let Ok(list) = run_checked(&["ip", "netns", "list"], Duration::from_secs(10)) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            match pid_of_name(name, NAMESPACE_PREFIX) {
                Some(pid) if !pid_alive(pid) => delete_namespace(name),
                _ => {}
            }
        }
    }
    if let Ok(entries) = fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(pid) = pid_of_name(&name, DIR_PREFIX) {
                if !pid_alive(pid) {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}

/// Kills every process in namespace `name`, then deletes it. Quiet when it
/// does not exist.
pub(crate) fn delete_namespace(name: &str) {
    if !Path::new("/run/netns").join(name).exists() {
        return;
    }
    for _ in 0..3 {
        let pids = run_checked(&["ip", "netns", "pids", name], Duration::from_secs(10))
            .unwrap_or_default();
        let pids: Vec<&str> = pids.split_whitespace().collect();
        if pids.is_empty() {
            break;
        }
        let mut argv = vec!["kill", "-s", "KILL"];
        argv.extend(pids);
        let _ = run_checked(&argv, Duration::from_secs(5));
        thread::sleep(Duration::from_millis(50));
    }
    let _ = run_checked(&["ip", "netns", "del", name], Duration::from_secs(10));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_tags_differ_and_carry_the_pid() {
        let a = unique_tag();
        let b = unique_tag();
        assert_ne!(a, b);
        let pid = std::process::id();
        assert_eq!(
            pid_of_name(&format!("xlab-{a}-a"), NAMESPACE_PREFIX),
            Some(pid)
        );
    }

    #[test]
    fn names_without_a_pid_are_not_ours() {
        assert_eq!(pid_of_name("xlab-foo-a", NAMESPACE_PREFIX), None);
        assert_eq!(pid_of_name("other-12-a", NAMESPACE_PREFIX), None);
    }

    #[test]
    fn a_command_that_outlives_its_timeout_is_killed() {
        let started = Instant::now();
        let err = run_with_timeout(Command::new("sleep").arg("5"), Duration::from_millis(200))
            .unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_failing_command_reports_its_stderr() {
        let err = run_checked(
            &["sh", "-c", "echo oops >&2; exit 3"],
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(err.to_string().contains("oops"), "{err}");
    }

    #[test]
    fn a_dropped_child_is_stopped_and_its_directory_removed() {
        let dir = LabDir::new("unit").unwrap();
        let path = dir.path().to_path_buf();
        let log = path.join("sleep.log");
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let child = LabChild::spawn(cmd, &log).unwrap();
        let pid = child.pid();
        assert!(pid_alive(pid));
        drop(child);
        assert!(!pid_alive(pid), "sleep {pid} still runs");
        drop(dir);
        assert!(!path.exists() || std::env::var_os(KEEP_ENV).is_some());
    }
}
