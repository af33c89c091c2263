//! Command line: getopt-compatible normalising, argh parsing, and the reference's checks of
//! option combinations in the reference's order.
//!
//! The reference parses with glibc `getopt_long` and the short-option string `"-dfhmno:O:qrstV"`:
//! options are handled one by one in argument order (the leading `-` returns non-options in
//! order too), so `-h`, `-V`, a second `-o`/`-O`, a second SOURCE and every getopt error end the
//! run at the point where they appear. [`normalise`] replays exactly that walk (bundled short
//! flags, attached arguments, `--name=value`, unique long prefixes, `--` ending the options) and
//! turns the command line into the one canonical spelling that argh accepts: long names only,
//! one value per option, SOURCE after `--`. argh then fills [`Args`], which becomes [`Options`].
//! [`check_combinations`] and [`check_output`] are the reference's post-parse checks 1–12
//! (spec §2.2), in its order, with its texts.
use crate::dev::fd::{self, Kind};
use crate::error::{errno, Error, Result};
use crate::report::Report;
use crate::text;
use argh::FromArgs;
use std::io::Write;
use std::prelude::v1::*;
use std::process::ExitCode;

/// Printed on stderr before anything else, whatever the arguments.
pub const BANNER: &str = "ntfsclone v2022.10.3 (libntfs-3g)\n";

/// The reference's usage text (stderr), including its final contact lines.
pub const USAGE: &str = "
Usage: ntfsclone [OPTIONS] SOURCE
    Efficiently clone NTFS to a sparse file, image, device or standard output.

    -o, --output FILE      Clone NTFS to the non-existent FILE
    -O, --overwrite FILE   Clone NTFS to FILE, overwriting if exists
    -s, --save-image       Save to the special image format
    -r, --restore-image    Restore from the special image format
        --rescue           Continue after disk read errors
    -m, --metadata         Clone *only* metadata (for NTFS experts)
    -n, --no-action        Test restoring, without outputting anything
        --ignore-fs-check  Ignore the filesystem check result
        --new-serial       Set a new serial number
        --new-half-serial  Set a partial new serial number
    -t, --preserve-timestamps Do not clear the timestamps
    -q, --quiet            Do not display any progress bars
    -f, --force            Force to progress (DANGEROUS)
        --full-logfile     Include the full logfile in metadata output
    -h, --help             Display this help
    -V, --version          Display version information

    If FILE is '-' then send the image to the standard output. If SOURCE is '-'
    and --restore-image is used then read the image from the standard input.

Developers' email address: ntfs-3g-devel@lists.sf.net
News, support and information:  https://github.com/tuxera/ntfs-3g/
";

/// The reference's `-V` text (stderr, after the banner). It names the authors of the original
/// tool and its licence, whose behaviour this program reproduces.
pub const VERSION: &str = "Efficiently clone, image, restore or rescue an NTFS Volume.

Copyright (c) 2003-2006 Szabolcs Szakacsits
Copyright (c) 2004-2006 Anton Altaparmakov
Copyright (c) 2010-2018 Jean-Pierre Andre

This program is free software, released under the GNU General Public License
and you are welcome to redistribute it under certain conditions.  It comes with
ABSOLUTELY NO WARRANTY; for details read the GNU General Public License to be
found in the file \"COPYING\" distributed with this program, or online at:
http://www.gnu.org/copyleft/gpl.html

Developers' email address: ntfs-3g-devel@lists.sf.net
News, support and information:  https://github.com/tuxera/ntfs-3g/
";

/// Validated options of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// SOURCE: a volume, or an image (`-` = stdin) with `-r`.
    pub source: String,
    /// `-o`/`-O` FILE (`-` = stdout); None only with `-n`.
    pub output: Option<String>,
    /// `-O` was used.
    pub overwrite: bool,
    /// `-s` (cleared when `-m -s` turns into `metadata_image`).
    pub save_image: bool,
    /// `-r`.
    pub restore_image: bool,
    /// `-m` without `-s`.
    pub metadata: bool,
    /// `-m -s`.
    pub metadata_image: bool,
    /// `--rescue`.
    pub rescue: bool,
    /// `-n`.
    pub no_action: bool,
    /// `--ignore-fs-check`.
    pub ignore_fs_check: bool,
    /// Bit 1 = `--new-half-serial`, bit 2 = `--new-serial` (full wins).
    pub new_serial: u8,
    /// `-t`.
    pub preserve_timestamps: bool,
    /// `-q`.
    pub quiet: bool,
    /// `-f` count.
    pub force: u32,
    /// `--full-logfile`.
    pub full_logfile: bool,
    /// `--no-checksum` (our extension): write images without the integrity trailer and do not
    /// verify it when restoring.
    pub no_checksum: bool,
    /// `--progress-fd N` (our extension): also write progress as JSON lines to descriptor N.
    pub progress_fd: Option<i32>,
}

/// ntfsclone: efficiently clone, image, restore or rescue an NTFS volume.
///
/// The command line is getopt-style and compatible with ntfs-3g's ntfsclone: short flags
/// bundle (`-sqo FILE`), `--name=value` works, long names may be shortened to a unique
/// prefix, and options may follow SOURCE. `-h`/`--help` prints the reference's usage text,
/// `-V`/`--version` its version text. `-d` is accepted and ignored.
///
/// This struct only sees the canonical spelling made by `normalise`.
#[derive(FromArgs, Debug, Default, PartialEq, Eq)]
struct Args {
    /// clone NTFS to the non-existent FILE (`-` = standard output)
    #[argh(option, short = 'o')]
    output: Option<String>,
    /// clone NTFS to FILE, overwriting if it exists (regular file or block device)
    #[argh(option, short = 'O')]
    overwrite: Option<String>,
    /// save to the special image format
    #[argh(switch, short = 's')]
    save_image: bool,
    /// restore from the special image format (SOURCE `-` = standard input)
    #[argh(switch, short = 'r')]
    restore_image: bool,
    /// continue after disk read errors (unreadable sectors are filled with a marker)
    #[argh(switch)]
    rescue: bool,
    /// clone *only* metadata, wiping user data and timestamps (for NTFS experts)
    #[argh(switch, short = 'm')]
    metadata: bool,
    /// test restoring an image, without outputting anything
    #[argh(switch, short = 'n')]
    no_action: bool,
    /// ignore the filesystem check result (only with --metadata or --rescue)
    #[argh(switch)]
    ignore_fs_check: bool,
    /// set a new volume serial number in the clone
    #[argh(switch)]
    new_serial: bool,
    /// set a new upper half of the volume serial number in the clone
    #[argh(switch)]
    new_half_serial: bool,
    /// metadata mode: do not clear the timestamps
    #[argh(switch, short = 't')]
    preserve_timestamps: bool,
    /// do not display any progress bars
    #[argh(switch, short = 'q')]
    quiet: bool,
    /// force to progress (DANGEROUS); each dirty-volume check consumes one
    #[argh(switch, short = 'f')]
    force: u32,
    /// metadata mode: include the full $LogFile
    #[argh(switch)]
    full_logfile: bool,
    /// display version information
    #[argh(switch, short = 'V')]
    version: bool,
    /// extension: do not write (when saving) or verify (when restoring) image checksums;
    /// must be spelled in full
    #[argh(switch)]
    no_checksum: bool,
    /// extension: also report progress as JSON lines on file descriptor N; must be spelled
    /// in full
    #[argh(option)]
    progress_fd: Option<i32>,
    /// the NTFS volume, or with --restore-image the image (`-` = standard input)
    #[argh(positional)]
    source: Option<String>,
}

/// How the parse of the command line ended, when it did not give options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// `-h`/`--help`: usage on stderr, status 0.
    Help,
    /// `-V`/`--version`: version text on stderr, status 0.
    Version,
    /// Bad command line: this message (getopt's wording, may be empty) then the usage on
    /// stderr, status 1.
    Usage(Vec<u8>),
}

/// An option of the reference's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Debug,
    Force,
    Help,
    Metadata,
    NoAction,
    Output,
    Overwrite,
    Quiet,
    Restore,
    Save,
    PreserveTimestamps,
    Version,
    IgnoreFsCheck,
    Rescue,
    NewSerial,
    NewHalfSerial,
    FullLogfile,
    NoChecksum,
    ProgressFd,
}

impl Opt {
    /// Whether the option takes a value.
    fn has_arg(self) -> bool {
        matches!(self, Opt::Output | Opt::Overwrite | Opt::ProgressFd)
    }
}

/// The reference's long options, in its table order (glibc lists ambiguous candidates in this
/// order; recovered black-box from `ntfsclone --=x`).
const LONG: &[(&str, Opt)] = &[
    ("quiet", Opt::Quiet),
    ("force", Opt::Force),
    ("help", Opt::Help),
    ("metadata", Opt::Metadata),
    ("no-action", Opt::NoAction),
    ("output", Opt::Output),
    ("overwrite", Opt::Overwrite),
    ("restore-image", Opt::Restore),
    ("ignore-fs-check", Opt::IgnoreFsCheck),
    ("rescue", Opt::Rescue),
    ("new-serial", Opt::NewSerial),
    ("new-half-serial", Opt::NewHalfSerial),
    ("full-logfile", Opt::FullLogfile),
    ("save-image", Opt::Save),
    ("preserve-timestamps", Opt::PreserveTimestamps),
    ("version", Opt::Version),
];

/// Our extensions. They match only when spelled in full, so that every abbreviation that
/// worked (or failed) with the reference does the same here.
const LONG_EXT: &[(&str, Opt)] = &[
    ("no-checksum", Opt::NoChecksum),
    ("progress-fd", Opt::ProgressFd),
];

/// The reference's short options (`"-dfhmno:O:qrstV"`).
const SHORT: &[(u8, Opt)] = &[
    (b'd', Opt::Debug),
    (b'f', Opt::Force),
    (b'h', Opt::Help),
    (b'm', Opt::Metadata),
    (b'n', Opt::NoAction),
    (b'o', Opt::Output),
    (b'O', Opt::Overwrite),
    (b'q', Opt::Quiet),
    (b'r', Opt::Restore),
    (b's', Opt::Save),
    (b't', Opt::PreserveTimestamps),
    (b'V', Opt::Version),
];

/// getopt's message prefix: `argv[0]: ` (verbatim, as glibc prints it).
fn getopt_msg(prog: &[u8], parts: &[&[u8]]) -> Exit {
    let mut m = prog.to_vec();
    m.extend_from_slice(b": ");
    for p in parts {
        m.extend_from_slice(p);
    }
    m.push(b'\n');
    Exit::Usage(m)
}

/// Looks up a long option the way glibc `getopt_long` does: an exact name wins, otherwise a
/// unique prefix of a reference option; several prefixes are ambiguous.
fn find_long(
    prog: &[u8],
    arg: &[u8],
    name: &[u8],
) -> core::result::Result<(&'static str, Opt), Exit> {
    if let Some(&(n, o)) = LONG
        .iter()
        .chain(LONG_EXT)
        .find(|(n, _)| n.as_bytes() == name)
    {
        return Ok((n, o));
    }
    let hits: Vec<&(&str, Opt)> = LONG
        .iter()
        .filter(|(n, _)| n.as_bytes().starts_with(name))
        .collect();
    match hits.as_slice() {
        [] => Err(getopt_msg(prog, &[b"unrecognized option '", arg, b"'"])),
        [&(n, o)] => Ok((n, o)),
        many => {
            let mut m: Vec<u8> = Vec::new();
            m.extend_from_slice(b"option '");
            m.extend_from_slice(arg);
            m.extend_from_slice(b"' is ambiguous; possibilities:");
            for (n, _) in many {
                m.extend_from_slice(b" '--");
                m.extend_from_slice(n.as_bytes());
                m.push(b'\'');
            }
            Err(getopt_msg(prog, &[&m]))
        }
    }
}

/// Accumulates the canonical argh spelling while replaying the reference's option handling.
#[derive(Default)]
struct Canon {
    args: Vec<String>,
    output_seen: bool,
    source: Option<String>,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Canon {
    /// What the reference does with one option (`parse_options`' switch).
    fn apply(
        &mut self,
        prog: &[u8],
        opt: Opt,
        value: Option<&[u8]>,
    ) -> core::result::Result<(), Exit> {
        let flag = |s: &str| s.to_string();
        match opt {
            Opt::Debug => {}
            Opt::Help => return Err(Exit::Help),
            Opt::Version => return Err(Exit::Version),
            Opt::Output | Opt::Overwrite => {
                // A second -o/-O: usage, no message.
                if self.output_seen {
                    return Err(Exit::Usage(Vec::new()));
                }
                self.output_seen = true;
                let name = if opt == Opt::Output {
                    "--output"
                } else {
                    "--overwrite"
                };
                self.args.push(flag(name));
                self.args.push(lossy(value.unwrap_or_default()));
            }
            Opt::ProgressFd => {
                let v = value.unwrap_or_default();
                let ok = core::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<i32>().ok())
                    .filter(|n| *n >= 0);
                if ok.is_none() {
                    return Err(getopt_msg(
                        prog,
                        &[
                            b"option '--progress-fd' needs a file descriptor number, not '",
                            v,
                            b"'",
                        ],
                    ));
                }
                self.args.push(flag("--progress-fd"));
                self.args.push(lossy(v));
            }
            Opt::Force => self.args.push(flag("--force")),
            Opt::Metadata => self.args.push(flag("--metadata")),
            Opt::NoAction => self.args.push(flag("--no-action")),
            Opt::Quiet => self.args.push(flag("--quiet")),
            Opt::Restore => self.args.push(flag("--restore-image")),
            Opt::Save => self.args.push(flag("--save-image")),
            Opt::PreserveTimestamps => self.args.push(flag("--preserve-timestamps")),
            Opt::IgnoreFsCheck => self.args.push(flag("--ignore-fs-check")),
            Opt::Rescue => self.args.push(flag("--rescue")),
            Opt::NewSerial => self.args.push(flag("--new-serial")),
            Opt::NewHalfSerial => self.args.push(flag("--new-half-serial")),
            Opt::FullLogfile => self.args.push(flag("--full-logfile")),
            Opt::NoChecksum => self.args.push(flag("--no-checksum")),
        }
        Ok(())
    }
}

/// Replays glibc `getopt_long` over `args` (without argv[0]) with the reference's option
/// table and option handling, and returns the canonical argh argument list: long names only,
/// SOURCE last after `--`. `prog` is argv[0], used verbatim in getopt's messages.
pub fn normalise(prog: &[u8], args: &[&[u8]]) -> core::result::Result<Vec<String>, Exit> {
    let mut c = Canon::default();
    let mut i = 0;
    while let Some(&arg) = args.get(i) {
        i += 1;
        if arg == b"--" {
            // End of options; the reference never looks at what follows.
            break;
        }
        if arg.len() < 2 || arg[0] != b'-' {
            // A non-option (also "" and "-"): the SOURCE; a second one is a usage error.
            if c.source.is_some() {
                return Err(Exit::Usage(Vec::new()));
            }
            c.source = Some(lossy(arg));
            continue;
        }
        if let Some(body) = arg.strip_prefix(b"--") {
            let (name, attached) = match body.iter().position(|&b| b == b'=') {
                Some(p) => (&body[..p], Some(&body[p + 1..])),
                None => (body, None),
            };
            let (full, opt) = find_long(prog, arg, name)?;
            let value = if opt.has_arg() {
                match attached {
                    Some(v) => Some(v),
                    None => match args.get(i) {
                        Some(&v) => {
                            i += 1;
                            Some(v)
                        }
                        None => {
                            return Err(getopt_msg(
                                prog,
                                &[b"option '--", full.as_bytes(), b"' requires an argument"],
                            ))
                        }
                    },
                }
            } else if attached.is_some() {
                return Err(getopt_msg(
                    prog,
                    &[
                        b"option '--",
                        full.as_bytes(),
                        b"' doesn't allow an argument",
                    ],
                ));
            } else {
                None
            };
            c.apply(prog, opt, value)?;
            continue;
        }
        // A bundle of short options.
        let mut j = 1;
        while let Some(&ch) = arg.get(j) {
            j += 1;
            let Some(&(_, opt)) = SHORT.iter().find(|(s, _)| *s == ch) else {
                return Err(getopt_msg(prog, &[b"invalid option -- '", &[ch], b"'"]));
            };
            if opt.has_arg() {
                let value = if j < arg.len() {
                    &arg[j..]
                } else if let Some(&v) = args.get(i) {
                    i += 1;
                    v
                } else {
                    return Err(getopt_msg(
                        prog,
                        &[b"option requires an argument -- '", &[ch], b"'"],
                    ));
                };
                c.apply(prog, opt, Some(value))?;
                break;
            }
            c.apply(prog, opt, None)?;
        }
    }
    let mut out = c.args;
    if let Some(s) = c.source {
        out.push("--".to_string());
        out.push(s);
    }
    Ok(out)
}

/// A parsed command line, before the post-parse checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The options; `source` is empty when none was given.
    pub options: Options,
    /// Whether a SOURCE was given (an empty string counts, as in the reference).
    pub has_source: bool,
}

/// Parses a command line (`argv` without argv[0]) into options, before the post-parse checks.
pub fn parse(prog: &[u8], args: &[&[u8]]) -> core::result::Result<Parsed, Exit> {
    let canon = normalise(prog, args)?;
    let refs: Vec<&str> = canon.iter().map(String::as_str).collect();
    let a = Args::from_args(&["ntfsclone"], &refs).map_err(|e| {
        // Cannot happen with a canonical list; keep argh's words rather than panicking.
        let mut m = prog.to_vec();
        m.extend_from_slice(b": ");
        m.extend_from_slice(e.output.as_bytes());
        Exit::Usage(m)
    })?;
    if a.version {
        return Err(Exit::Version);
    }
    let (output, overwrite) = match (a.output, a.overwrite) {
        (Some(o), _) => (Some(o), false),
        (None, Some(o)) => (Some(o), true),
        (None, None) => (None, false),
    };
    let has_source = a.source.is_some();
    let options = Options {
        source: a.source.unwrap_or_default(),
        output,
        overwrite,
        save_image: a.save_image,
        restore_image: a.restore_image,
        metadata: a.metadata,
        metadata_image: false,
        rescue: a.rescue,
        no_action: a.no_action,
        ignore_fs_check: a.ignore_fs_check,
        new_serial: u8::from(a.new_half_serial) | (u8::from(a.new_serial) << 1),
        preserve_timestamps: a.preserve_timestamps,
        quiet: a.quiet,
        force: a.force,
        full_logfile: a.full_logfile,
        no_checksum: a.no_checksum,
        progress_fd: a.progress_fd,
    };
    Ok(Parsed {
        options,
        has_source,
    })
}

/// The reference's checks 1–9 of option combinations (spec §2.2), in its order; also turns
/// `-m -s` into metadata-image mode. `has_source` is false when no SOURCE was given.
pub fn check_combinations(o: &mut Options, has_source: bool) -> Result<()> {
    if !o.no_action && o.output.is_none() {
        return Err(Error::Usage(text!("You must specify an output file.\n")));
    }
    if !has_source {
        return Err(Error::Usage(text!("You must specify a device file.\n")));
    }
    if !o.restore_image && o.source == "-" {
        return Err(Error::Usage(text!(
            "Only special images can be read from standard input\n"
        )));
    }
    if o.metadata && o.save_image {
        o.metadata_image = true;
        o.metadata = false;
        o.save_image = false;
    }
    let any_metadata = o.metadata || o.metadata_image;
    if any_metadata && o.restore_image {
        return Err(Error::fatal(format_args!(
            "Restoring only metadata from an image is not supported!\n"
        )));
    }
    if o.metadata && o.output.as_deref() == Some("-") {
        return Err(Error::fatal(format_args!(
            "Cloning only metadata to stdout isn't supported!\n"
        )));
    }
    if o.ignore_fs_check && !any_metadata && !o.rescue {
        return Err(Error::fatal(format_args!(
            "Filesystem check can be ignored only for metadata cloning or rescue situations!\n"
        )));
    }
    if o.save_image && o.restore_image {
        return Err(Error::fatal(format_args!(
            "Saving and restoring an image at the same time is not supported!\n"
        )));
    }
    if o.no_action && !o.restore_image {
        return Err(Error::fatal(format_args!(
            "A restoring test requires the restore option!\n"
        )));
    }
    if o.no_action && o.output.is_some() {
        return Err(Error::fatal(format_args!(
            "A restoring test requires not defining any output!\n"
        )));
    }
    Ok(())
}

/// The reference's checks 10–12 of the output path (spec §2.2). `stat` says what is at a path:
/// `Ok(None)` for nothing (ENOENT), `Err(errno)` when it cannot tell.
pub fn check_output(
    o: &Options,
    stat: impl Fn(&str) -> core::result::Result<Option<Kind>, i32>,
) -> Result<()> {
    let Some(out) = o.output.as_deref().filter(|p| *p != "-") else {
        return Ok(());
    };
    let kind = match stat(out) {
        Ok(None) => return Ok(()),
        Ok(Some(k)) => k,
        Err(e) if e == errno::ENOENT => return Ok(()),
        Err(e) => {
            return Err(Error::Os {
                what: text!("Couldn't access '{out}'"),
                errno: e,
            })
        }
    };
    if !o.overwrite {
        return Err(Error::fatal(format_args!(
            "Output file '{out}' already exists.\nUse option --overwrite if you want to replace its content.\n"
        )));
    }
    if kind == Kind::Block && (o.metadata || o.metadata_image) && o.force == 0 {
        return Err(Error::fatal(format_args!(
            "Cloning only metadata to a block device does not usually make sense, aborting...\n\
             If you were instructed to do this by a developer and/or are sure that this is what you \
             want to do, run this utility again but this time add the force option, i.e. add \
             '--force' to the command line arguments."
        )));
    }
    Ok(())
}

/// Writes raw bytes on stderr (unbuffered, like the reference's stderr).
fn stderr_bytes(b: &[u8]) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(b);
    let _ = e.flush();
}

/// Prints an error of the checks or of the run: usage errors with the usage text on stderr,
/// the others on `msg_out`, where the reference prints its fatal errors (stdout, or stderr
/// when the output is stdout): scripts that look for the `ERROR` line find ours there too,
/// also where our text is our own (a truncated image, a damaged trailer).
fn print_error(e: &Error, msg_to_stderr: bool) {
    match e {
        Error::BrokenPipe | Error::Reported => {}
        Error::Usage(_) => Report::err(format_args!("{e}{USAGE}")),
        _ => Report {
            msg_to_stderr,
            quiet: false,
        }
        .out(format_args!("{e}")),
    }
}

/// Entry point of the binary: banner, parse, check, run, report. Returns the exit status.
pub fn main() -> ExitCode {
    use std::os::unix::ffi::OsStringExt;
    Report::err(format_args!("{BANNER}"));
    let argv: Vec<Vec<u8>> = std::env::args_os().map(OsStringExt::into_vec).collect();
    let prog: &[u8] = argv.first().map_or(b"ntfsclone", Vec::as_slice);
    let args: Vec<&[u8]> = argv.iter().skip(1).map(Vec::as_slice).collect();
    let Parsed {
        options: mut opts,
        has_source,
    } = match parse(prog, &args) {
        Ok(p) => p,
        Err(Exit::Help) => {
            stderr_bytes(USAGE.as_bytes());
            return ExitCode::SUCCESS;
        }
        Err(Exit::Version) => {
            stderr_bytes(VERSION.as_bytes());
            return ExitCode::SUCCESS;
        }
        Err(Exit::Usage(msg)) => {
            let mut m = msg;
            m.extend_from_slice(USAGE.as_bytes());
            stderr_bytes(&m);
            return ExitCode::FAILURE;
        }
    };
    let checked = check_combinations(&mut opts, has_source)
        .and_then(|()| check_output(&opts, |p| fd::stat_kind(p).map_err(|e| e.raw_os_error())));
    if let Err(e) = checked {
        // The checks run before msg_out is chosen: their messages go to stderr.
        print_error(&e, true);
        return ExitCode::FAILURE;
    }
    match crate::ops::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(&e, opts.output.as_deref() == Some("-"));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::panic;

    fn norm(args: &[&str]) -> core::result::Result<Vec<String>, Exit> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        normalise(b"ntfsclone", &a)
    }

    fn msg(s: &str) -> Exit {
        Exit::Usage(format!("ntfsclone: {s}\n").into_bytes())
    }

    fn ok(v: &[&str]) -> core::result::Result<Vec<String>, Exit> {
        Ok(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn normalise_table() {
        type Case<'a> = (&'a [&'a str], core::result::Result<Vec<String>, Exit>);
        let cases: &[Case] = &[
            (&["-sqo", "x", "v"], ok(&["--save-image", "--quiet", "--output", "x", "--", "v"])),
            (&["-ox"], ok(&["--output", "x"])),
            (&["-o-"], ok(&["--output", "-"])),
            (&["--output=f", "v"], ok(&["--output", "f", "--", "v"])),
            (&["--output=", "v"], ok(&["--output", "", "--", "v"])),
            (&["--save", "--outp", "x"], ok(&["--save-image", "--output", "x"])),
            (&["--no", "--rescu"], ok(&["--no-action", "--rescue"])),
            (&["v", "-s", "-O", "x"], ok(&["--save-image", "--overwrite", "x", "--", "v"])),
            (&["-s", "-o", "x", "--", "v"], ok(&["--save-image", "--output", "x"])),
            (&["-o", "--", "v"], ok(&["--output", "--", "--", "v"])),
            (&["--output", "-s", "-"], ok(&["--output", "-s", "--", "-"])),
            (&["-d", "-ff", "--force"], ok(&["--force", "--force", "--force"])),
            (&[""], ok(&["--", ""])),
            (&["help"], ok(&["--", "help"])),
            (&["--new-serial", "--new-h"], ok(&["--new-serial", "--new-half-serial"])),
            (&["--no-checksum", "--progress-fd=3"], ok(&["--no-checksum", "--progress-fd", "3"])),
            (&["--progress-fd", "4"], ok(&["--progress-fd", "4"])),
            (&["-h", "--bogus"], Err(Exit::Help)),
            (&["--he"], Err(Exit::Help)),
            (&["-V", "-h"], Err(Exit::Version)),
            (&["-sV"], Err(Exit::Version)),
            (&["--bogus", "-h"], Err(msg("unrecognized option '--bogus'"))),
            (&["--d=x"], Err(msg("unrecognized option '--d=x'"))),
            (&["-x"], Err(msg("invalid option -- 'x'"))),
            (&["-s-"], Err(msg("invalid option -- '-'"))),
            (&["-W", "foo"], Err(msg("invalid option -- 'W'"))),
            (&["-o"], Err(msg("option requires an argument -- 'o'"))),
            (&["-sO"], Err(msg("option requires an argument -- 'O'"))),
            (&["--out"], Err(msg("option '--output' requires an argument"))),
            (&["--outpu=a", "--ov"], Err(msg("option '--overwrite' requires an argument"))),
            (&["--hel=x"], Err(msg("option '--help' doesn't allow an argument"))),
            (&["--quiet="], Err(msg("option '--quiet' doesn't allow an argument"))),
            (
                &["--new"],
                Err(msg("option '--new' is ambiguous; possibilities: '--new-serial' '--new-half-serial'")),
            ),
            (
                &["--new=5"],
                Err(msg("option '--new=5' is ambiguous; possibilities: '--new-serial' '--new-half-serial'")),
            ),
            (
                &["--n"],
                Err(msg("option '--n' is ambiguous; possibilities: '--no-action' '--new-serial' '--new-half-serial'")),
            ),
            (&["--res"], Err(msg("option '--res' is ambiguous; possibilities: '--restore-image' '--rescue'"))),
            // Extensions match only in full: prefixes behave as with the reference.
            (&["--no-c"], Err(msg("unrecognized option '--no-c'"))),
            (&["--pr"], ok(&["--preserve-timestamps"])),
            (&["--pro"], Err(msg("unrecognized option '--pro'"))),
            (&["--progress-fd", "x"], Err(msg("option '--progress-fd' needs a file descriptor number, not 'x'"))),
            (&["--progress-fd=-1"], Err(msg("option '--progress-fd' needs a file descriptor number, not '-1'"))),
            (&["--progress-fd"], Err(msg("option '--progress-fd' requires an argument"))),
            (&["-o", "a", "-o", "b"], Err(Exit::Usage(Vec::new()))),
            (&["--output=a", "--overwrite=a", "v"], Err(Exit::Usage(Vec::new()))),
            (&["-o", "a", "-O", "b", "-h"], Err(Exit::Usage(Vec::new()))),
            (&["a", "b", "-h"], Err(Exit::Usage(Vec::new()))),
        ];
        for (args, want) in cases {
            assert_eq!(&norm(args), want, "args {args:?}");
        }
    }

    #[test]
    fn ambiguous_everything_lists_the_table_in_order() {
        let Err(Exit::Usage(m)) = norm(&["--=x"]) else {
            panic!("not ambiguous")
        };
        let m = String::from_utf8(m).unwrap();
        assert!(m.starts_with(
            "ntfsclone: option '--=x' is ambiguous; possibilities: '--quiet' '--force' '--help'"
        ));
        assert!(
            m.ends_with("'--save-image' '--preserve-timestamps' '--version'\n"),
            "{m}"
        );
        assert!(!m.contains("checksum") && !m.contains("progress"));
    }

    #[test]
    fn bytes_that_are_not_utf8() {
        let a: [&[u8]; 1] = [b"-\xc3\xa9"];
        assert_eq!(
            normalise(b"/x/ntfsclone", &a),
            Err(Exit::Usage(
                b"/x/ntfsclone: invalid option -- '\xc3'\n".to_vec()
            ))
        );
    }

    fn p(args: &[&str]) -> Options {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        parse(b"ntfsclone", &a).unwrap().options
    }

    #[test]
    fn parse_fills_options() {
        let o = p(&[
            "-sqff",
            "--overwrite=out",
            "vol",
            "--new-half",
            "--new-serial",
            "-t",
            "--full",
            "--ign",
            "--resc",
        ]);
        assert_eq!(
            o,
            Options {
                source: "vol".into(),
                output: Some("out".into()),
                overwrite: true,
                save_image: true,
                quiet: true,
                force: 2,
                new_serial: 3,
                preserve_timestamps: true,
                full_logfile: true,
                ignore_fs_check: true,
                rescue: true,
                ..Options::default()
            }
        );
        let o = p(&["-rn", "-", "--no-checksum", "--progress-fd", "7", "-m"]);
        assert!(o.restore_image && o.no_action && o.metadata && o.no_checksum && !o.overwrite);
        assert_eq!(
            (o.source.as_str(), o.output, o.progress_fd),
            ("-", None, Some(7))
        );
        assert_eq!(p(&["--new-half-serial"]).new_serial, 1);
        assert_eq!(p(&["-o", "x"]).output.as_deref(), Some("x"));
    }

    fn check(args: &[&str]) -> Result<Options> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        let Parsed {
            options: mut o,
            has_source,
        } = parse(b"ntfsclone", &a).unwrap();
        check_combinations(&mut o, has_source)?;
        Ok(o)
    }

    fn fatal(s: &str) -> Result<Options> {
        Err(Error::Fatal(text!("{s}")))
    }

    #[test]
    fn combination_checks_in_order() {
        let usage = |s: &str| Err(Error::Usage(text!("{s}")));
        let cases: &[(&[&str], Result<Options>)] = &[
            (&[], usage("You must specify an output file.\n")),
            (&["-n", "-n"], usage("You must specify a device file.\n")),
            (&["--out=", "-s"], usage("You must specify a device file.\n")),
            (&["-o", "x", "-"], usage("Only special images can be read from standard input\n")),
            (&["-o", "x", "-m", "-m", "-"], usage("Only special images can be read from standard input\n")),
            (&["-m", "-s", "-r", "-n", "v"], fatal("Restoring only metadata from an image is not supported!\n")),
            (&["-m", "-o", "-", "v"], fatal("Cloning only metadata to stdout isn't supported!\n")),
            (
                &["--ignore-fs-check", "-s", "-o", "x", "v"],
                fatal("Filesystem check can be ignored only for metadata cloning or rescue situations!\n"),
            ),
            (&["-s", "-r", "-n", "-o", "x", "v"], fatal("Saving and restoring an image at the same time is not supported!\n")),
            (&["-n", "v"], fatal("A restoring test requires the restore option!\n")),
            (&["-n", "-r", "-o", "-", "v"], fatal("A restoring test requires not defining any output!\n")),
        ];
        for (args, want) in cases {
            assert_eq!(&check(args), want, "args {args:?}");
        }
        let o = check(&["-m", "-s", "-o", "-", "--ignore-fs-check", "v"]).unwrap();
        assert!(o.metadata_image && !o.metadata && !o.save_image);
        assert!(check(&["--ignore-fs-check", "--rescue", "-o", "x", "v"]).is_ok());
        assert!(check(&["-n", "-r", "-"]).is_ok());
        assert!(check(&["-r", "-o", "-", "-"]).is_ok());
    }

    #[test]
    fn output_checks_in_order() {
        let o = |args: &[&str]| check(args).unwrap();
        let none = |_: &str| Ok(None);
        let file = |_: &str| Ok(Some(Kind::File));
        let block = |_: &str| Ok(Some(Kind::Block));
        let enotdir = |_: &str| Err(20);
        let blk_msg = "Cloning only metadata to a block device does not usually make sense, aborting...\nIf you were instructed to do this by a developer and/or are sure that this is what you want to do, run this utility again but this time add the force option, i.e. add '--force' to the command line arguments.";
        assert_eq!(check_output(&o(&["-o", "x", "v"]), none), Ok(()));
        assert_eq!(check_output(&o(&["-o", "-", "v"]), enotdir), Ok(()));
        assert_eq!(check_output(&o(&["-n", "-r", "v"]), enotdir), Ok(()));
        assert_eq!(
            check_output(&o(&["-o", "a/b", "v"]), enotdir),
            Err(Error::Os {
                what: text!("Couldn't access 'a/b'"),
                errno: 20
            })
        );
        assert_eq!(
            check_output(&o(&["-o", "x", "v"]), file),
            fatal("Output file 'x' already exists.\nUse option --overwrite if you want to replace its content.\n").map(|_| ())
        );
        assert_eq!(
            check_output(&o(&["-m", "-o", "/dev/b", "v"]), block),
            fatal("Output file '/dev/b' already exists.\nUse option --overwrite if you want to replace its content.\n").map(|_| ())
        );
        assert_eq!(
            check_output(&o(&["-m", "-O", "/dev/b", "v"]), block),
            fatal(blk_msg).map(|_| ())
        );
        assert_eq!(
            check_output(&o(&["-m", "-s", "-O", "/dev/b", "v"]), block),
            fatal(blk_msg).map(|_| ())
        );
        assert_eq!(
            check_output(&o(&["-m", "-f", "-O", "/dev/b", "v"]), block),
            Ok(())
        );
        assert_eq!(check_output(&o(&["-O", "/dev/b", "v"]), block), Ok(()));
        assert_eq!(check_output(&o(&["-m", "-O", "f", "v"]), file), Ok(()));
    }
}
