//! The one QEMU launcher of the boot tests. A `Qemu` is built up (memory, machine, firmware,
//! kernel and command line, disks, network, raw arguments), then run under TCG with one CPU, no
//! display and no reboot, its serial console in `DIR/WHAT.serial`, until a stop condition:
//! the guest powers off, the rescue job's marker is seen (then a grace period for the power-off),
//! or one of some lines is seen. An interactive run (`console`) has the serial console on QEMU's
//! stdin for a test that answers prompts. A kernel panic fails the test; QEMU is killed and
//! reaped on every path (`Killed`).
use crate::common::*;
use crate::rescue::{boot_out, CMDLINE};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The line the rescue job prints when it is over (`ntfsclone-job: ok`, `... failed (exit N)`).
pub(crate) const MARKER: &str = "ntfsclone-job: ";

/// A child process (QEMU, a server) killed and reaped when dropped.
pub(crate) struct Killed(pub(crate) Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The firmware a machine boots.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Firmware {
    /// QEMU's own (SeaBIOS).
    Bios,
    /// OVMF without Secure Boot: its code read-only, a private copy of its variable store.
    Ovmf,
    /// OVMF with Secure Boot on and Microsoft's keys enrolled: q35 with SMM (OVMF's secure
    /// variable store needs it), the Secure Boot build and a private copy of its variable store.
    SecureBoot,
}

/// When a run stops.
#[derive(Clone)]
pub(crate) enum Until {
    /// QEMU exits (the guest powers off); still running at the timeout fails the test.
    PowerOff,
    /// QEMU exits after the job's marker; when the guest has not powered off `POWEROFF_GRACE`
    /// after the marker, QEMU is stopped (the job is over: its target was synced before the marker).
    /// No exit within the timeout fails the test.
    Marker,
    /// One of these strings appears on the console (then a moment for the rest of its line), or
    /// QEMU exits, or the timeout passes: the caller checks the console text.
    Seen(Vec<String>),
}

/// What one run printed.
pub(crate) struct Run {
    /// The serial console text (QEMU's stdout and stderr).
    pub(crate) log: String,
    /// The first job marker line (without its line end), if any.
    pub(crate) marker: Option<String>,
    /// Seconds from QEMU's start until the marker appeared.
    pub(crate) marker_secs: Option<f64>,
    /// QEMU's exit status; `None` when it was stopped.
    pub(crate) status: Option<ExitStatus>,
}

/// Result of a rescue job boot: the serial console text, the marker line and how long until it.
pub(crate) struct Boot {
    pub(crate) log: String,
    pub(crate) marker: String,
    pub(crate) secs: f64,
}

/// How long a guest may take to power off after the job marker (`Until::Marker`).
const POWEROFF_GRACE: Duration = Duration::from_secs(90);

/// The last 4000 characters of a console (for failure messages).
fn tail(log: &str) -> String {
    log.chars()
        .skip(log.chars().count().saturating_sub(4000))
        .collect()
}

/// A QEMU machine to run (see the module comment).
pub(crate) struct Qemu {
    dir: PathBuf,
    what: String,
    memory: u32,
    args: Vec<String>,
    kernel: Option<(PathBuf, PathBuf, String)>,
    timeout: Duration,
    until: Until,
}

impl Qemu {
    /// A machine named `what` (its console goes to `dir/what.serial`): 512 MiB, stops at the job
    /// marker (`POWEROFF_GRACE` for the power-off), 300 s timeout.
    pub(crate) fn new(dir: &Path, what: &str) -> Qemu {
        Qemu {
            dir: dir.to_path_buf(),
            what: what.to_string(),
            memory: 512,
            args: Vec::new(),
            kernel: None,
            timeout: Duration::from_secs(300),
            until: Until::Marker,
        }
    }

    /// Memory in MiB.
    pub(crate) fn memory(mut self, mib: u32) -> Qemu {
        self.memory = mib;
        self
    }

    /// Raw arguments, in order (after the ones given so far).
    pub(crate) fn args<I, S>(mut self, args: I) -> Qemu
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// `-drive SPEC`.
    pub(crate) fn drive(self, spec: impl Into<String>) -> Qemu {
        self.args(["-drive".to_string(), spec.into()])
    }

    /// `-device SPEC`.
    pub(crate) fn device(self, spec: impl Into<String>) -> Qemu {
        self.args(["-device".to_string(), spec.into()])
    }

    /// A raw disk image on virtio (the next of /dev/vda, /dev/vdb, ...).
    pub(crate) fn disk(self, path: &Path, readonly: bool) -> Qemu {
        let ro = if readonly { ",readonly=on" } else { "" };
        self.drive(format!("file={},format=raw,if=virtio{ro}", path.display()))
    }

    /// `path` as a read-only USB stick (usb-storage on xHCI), first in the boot order.
    pub(crate) fn usb_stick(self, path: &Path) -> Qemu {
        self.drive(format!(
            "if=none,id=stick,format=raw,readonly=on,file={}",
            path.display()
        ))
        .device("qemu-xhci")
        .device("usb-storage,drive=stick,bootindex=0")
    }

    /// No network card.
    pub(crate) fn no_net(self) -> Qemu {
        self.args(["-nic", "none"])
    }

    /// A network card on QEMU's user networking: `-nic user,OPTS` (the host's 127.0.0.1 is
    /// 10.0.2.2 to the guest).
    pub(crate) fn user_net(self, opts: &str) -> Qemu {
        self.args(["-nic".to_string(), format!("user,{opts}")])
    }

    /// The firmware (OVMF's variable store is copied into the run's directory).
    pub(crate) fn firmware(self, fw: Firmware) -> Qemu {
        let (code, vars, machine) = match fw {
            Firmware::Bios => return self,
            Firmware::Ovmf => {
                let pairs = [
                    (
                        "/usr/share/OVMF/OVMF_CODE_4M.fd",
                        "/usr/share/OVMF/OVMF_VARS_4M.fd",
                    ),
                    (
                        "/usr/share/OVMF/OVMF_CODE.fd",
                        "/usr/share/OVMF/OVMF_VARS.fd",
                    ),
                ];
                let (code, vars) = pairs
                    .into_iter()
                    .find(|(c, v)| Path::new(c).exists() && Path::new(v).exists())
                    .unwrap_or_else(|| {
                        panic!("OVMF is not installed: run `make deps` (package ovmf)")
                    });
                (code, vars, &[][..])
            }
            Firmware::SecureBoot => {
                let code = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd";
                let vars = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";
                for f in [code, vars] {
                    assert!(
                        Path::new(f).exists(),
                        "{f} is missing: run `make deps` (package ovmf)"
                    );
                }
                let machine = &[
                    "-machine",
                    "q35,smm=on",
                    "-global",
                    "driver=cfi.pflash01,property=secure,value=on",
                ][..];
                (code, vars, machine)
            }
        };
        let my_vars = self.dir.join(Path::new(vars).file_name().unwrap());
        fs::copy(vars, &my_vars).unwrap();
        let vars_spec = format!("if=pflash,format=raw,unit=1,file={}", my_vars.display());
        self.args(machine.iter().copied())
            .drive(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={code}"
            ))
            .drive(vars_spec)
    }

    /// A direct kernel boot: `-kernel`, `-initrd`, `-append`.
    pub(crate) fn kernel(mut self, kernel: &Path, initrd: &Path, append: &str) -> Qemu {
        self.kernel = Some((
            kernel.to_path_buf(),
            initrd.to_path_buf(),
            append.to_string(),
        ));
        self
    }

    /// A direct kernel boot of the rescue initramfs with `job` after the console setup.
    pub(crate) fn rescue(self, job: &str) -> Qemu {
        let out = boot_out();
        self.kernel(
            &out.join("vmlinuz"),
            &out.join("initramfs.img"),
            &format!("{CMDLINE} {job}"),
        )
    }

    /// Another initramfs for the direct kernel boot given before.
    pub(crate) fn initrd(mut self, initrd: &Path) -> Qemu {
        let k = self
            .kernel
            .as_mut()
            .expect("initrd() after kernel() or rescue()");
        k.1 = initrd.to_path_buf();
        self
    }

    /// The hard limit of the run.
    pub(crate) fn timeout(mut self, timeout: Duration) -> Qemu {
        self.timeout = timeout;
        self
    }

    /// The stop condition.
    pub(crate) fn until(mut self, until: Until) -> Qemu {
        self.until = until;
        self
    }

    /// Starts QEMU with `stdin`; returns it and the console file.
    fn spawn(&self, stdin: Stdio) -> (Killed, PathBuf) {
        let log = self.dir.join(format!("{}.serial", self.what));
        let file = fs::File::create(&log).unwrap();
        let mut cmd = Command::new(require("qemu-system-x86_64"));
        cmd.args(["-accel", "tcg", "-m"])
            .arg(self.memory.to_string())
            .args(["-smp", "1", "-nographic", "-no-reboot"])
            .args(&self.args);
        if let Some((kernel, initrd, append)) = &self.kernel {
            cmd.arg("-kernel")
                .arg(kernel)
                .arg("-initrd")
                .arg(initrd)
                .arg("-append")
                .arg(append);
        }
        let child = cmd
            .stdin(stdin)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start qemu: {e}"));
        (Killed(child), log)
    }

    /// Runs the machine until its stop condition (see `Until`); a kernel panic fails the test.
    pub(crate) fn run(self) -> Run {
        let what = &self.what;
        let (mut q, log_path) = self.spawn(Stdio::null());
        let read =
            || String::from_utf8_lossy(&fs::read(&log_path).unwrap_or_default()).into_owned();
        let start = Instant::now();
        let mut marker_at = None;
        loop {
            let text = read();
            if marker_at.is_none() && text.contains(MARKER) {
                marker_at = Some(start.elapsed().as_secs_f64());
            }
            let status = q.0.try_wait().unwrap();
            let panicked = text.contains("Kernel panic");
            let seen = match &self.until {
                Until::Seen(stop) => stop.iter().any(|m| text.contains(m.as_str())),
                _ => false,
            };
            // An emulated controller that stalls the power-off (seen with SD/xHCI under TCG on a
            // loaded host) gets the grace period after the marker, then QEMU is stopped.
            let stalled = matches!(self.until, Until::Marker)
                && status.is_none()
                && marker_at.is_some_and(|m| {
                    start.elapsed().as_secs_f64() > m + POWEROFF_GRACE.as_secs_f64()
                });
            if stalled {
                eprintln!(
                    "{what}: no power-off {:?} after the marker; QEMU stopped",
                    POWEROFF_GRACE
                );
            }
            let late = start.elapsed() > self.timeout && !stalled;
            if status.is_some() || panicked || seen || stalled || late {
                if seen && status.is_none() {
                    // A moment for the rest of the line.
                    std::thread::sleep(Duration::from_millis(500));
                }
                drop(q);
                let log = read();
                let tail = tail(&log);
                assert!(!panicked, "{what}: kernel panic:\n{tail}");
                let must_exit = !matches!(self.until, Until::Seen(_));
                assert!(
                    !(late && must_exit),
                    "{what}: no power-off within {:?}:\n{tail}",
                    self.timeout
                );
                let marker = log
                    .lines()
                    .map(|l| l.trim_end_matches('\r'))
                    .find(|l| l.starts_with(MARKER))
                    .map(str::to_string);
                eprintln!(
                    "{what}: QEMU ran {:.1} s, {}",
                    start.elapsed().as_secs_f64(),
                    match (&marker, marker_at) {
                        (Some(m), Some(at)) => format!("{m:?} after {at:.1} s"),
                        _ => "no job marker".to_string(),
                    }
                );
                return Run {
                    log,
                    marker,
                    marker_secs: marker_at,
                    status,
                };
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs a rescue job (until its marker and the power-off); fails on a timeout, a kernel
    /// panic, no rescue banner or no marker.
    pub(crate) fn job(self) -> Boot {
        let what = self.what.clone();
        let r = self.until(Until::Marker).run();
        let tail = tail(&r.log);
        assert!(
            r.log.contains("ntfsclone rescue"),
            "{what}: no banner:\n{tail}"
        );
        let marker = r
            .marker
            .unwrap_or_else(|| panic!("{what}: no ntfsclone-job marker:\n{tail}"));
        Boot {
            log: r.log,
            marker,
            secs: r.marker_secs.unwrap_or_default(),
        }
    }

    /// Starts the machine with its serial console on QEMU's stdin, for `Console::expect` and
    /// `Console::send`.
    pub(crate) fn console(self) -> Console {
        let (mut q, log) = self.spawn(Stdio::piped());
        let stdin = q.0.stdin.take().unwrap();
        Console {
            qemu: q,
            stdin,
            log,
            pos: 0,
            what: self.what,
        }
    }
}

/// A running QEMU whose serial console is its stdin and stdout (the latter in a file); killed
/// when dropped.
pub(crate) struct Console {
    qemu: Killed,
    stdin: ChildStdin,
    log: PathBuf,
    /// How far `expect` has read the console.
    pos: usize,
    what: String,
}

impl Console {
    fn text(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits for `needle` after what was read so far; returns the text up to and including it.
    /// QEMU's exit, a kernel panic or the timeout fail the test.
    pub(crate) fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let text = self.text();
            let from = self.pos.min(text.len());
            if let Some(i) = text[from..].find(needle) {
                let end = from + i + needle.len();
                self.pos = end;
                return text[from..end].to_string();
            }
            let exited = self.qemu.0.try_wait().unwrap().is_some();
            if exited || text.contains("Kernel panic") || start.elapsed() > timeout {
                let tail: String = text[from..].chars().take(4000).collect();
                panic!(
                    "{}: no {needle:?} within {timeout:?} (qemu exited: {exited}); console since the last match:\n{tail}",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Types `line` and Enter.
    pub(crate) fn send(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|_| self.stdin.flush())
            .unwrap_or_else(|e| panic!("{}: writing to the console: {e}", self.what));
    }

    /// Answers `prompt` (waited for first) with `line`; returns the text up to the prompt.
    pub(crate) fn answer(&mut self, prompt: &str, line: &str) -> String {
        // The boot itself may take minutes on a loaded host (TCG).
        let seen = self.expect(prompt, Duration::from_secs(240));
        self.send(line);
        seen
    }

    /// Waits up to `timeout` for QEMU to exit; true when it did.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.qemu.0.try_wait().unwrap().is_some() {
                return true;
            }
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
