//! glibc `getopt_long` replayed with the reference's option table (`"-dfhmno:O:qrstV"` and its
//! long options): options are handled one by one in argument order (the leading `-` returns
//! non-options in order too), so `-h`, `-V`, a second `-o`/`-O`, a second SOURCE and every getopt
//! error end the run at the point where they appear. [`normalise`] turns the command line into
//! the one canonical spelling that argh accepts: long names only, one value per option, SOURCE
//! after `--`.
use std::prelude::v1::*;

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
    Disk,
    NewDiskIds,
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
    ("disk", Opt::Disk),
    ("new-disk-ids", Opt::NewDiskIds),
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
struct CanonicalArgs {
    args: Vec<String>,
    output_seen: bool,
    source: Option<String>,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl CanonicalArgs {
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
            Opt::Disk => self.args.push(flag("--disk")),
            Opt::NewDiskIds => self.args.push(flag("--new-disk-ids")),
        }
        Ok(())
    }
}

/// Replays glibc `getopt_long` over `args` (without argv[0]) with the reference's option
/// table and option handling, and returns the canonical argh argument list: long names only,
/// SOURCE last after `--`. `prog` is argv[0], used verbatim in getopt's messages.
pub fn normalise(prog: &[u8], args: &[&[u8]]) -> core::result::Result<Vec<String>, Exit> {
    let mut canonical = CanonicalArgs::default();
    let mut i = 0;
    while let Some(&arg) = args.get(i) {
        i += 1;
        if arg == b"--" {
            // End of options; the reference never looks at what follows.
            break;
        }
        if arg.len() < 2 || arg[0] != b'-' {
            // A non-option (also "" and "-"): the SOURCE; a second one is a usage error.
            if canonical.source.is_some() {
                return Err(Exit::Usage(Vec::new()));
            }
            canonical.source = Some(lossy(arg));
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
            canonical.apply(prog, opt, value)?;
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
                canonical.apply(prog, opt, Some(value))?;
                break;
            }
            canonical.apply(prog, opt, None)?;
        }
    }
    let mut out = canonical.args;
    if let Some(s) = canonical.source {
        out.push("--".to_string());
        out.push(s);
    }
    Ok(out)
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
}
