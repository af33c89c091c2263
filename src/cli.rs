//! Command line: getopt-compatible normalising, argh parsing, and the reference's checks of
//! option combinations in the reference's order.
//!
//! The reference parses with glibc `getopt_long`; [`normalise`] replays that walk
//! (bundled short flags, attached arguments, `--name=value`, unique long prefixes, `--` ending
//! the options) and gives the one canonical spelling that argh accepts. argh then fills
//! [`Args`]. [`check_combinations`] and [`check_output`] are the reference's post-parse checks
//! 1–12 (spec §2.2), in its order, with its texts; they turn [`Args`] into [`Options`].
mod getopt;

pub use getopt::{normalise, Exit};

use crate::dev::fd::{self, Kind};
use crate::error::{errno, Error, Result};
use crate::options::{Mode, Options, Serial};
use crate::text;
use argh::FromArgs;
use std::prelude::v1::*;

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

/// ntfsclone: efficiently clone, image, restore or rescue an NTFS volume.
///
/// The command line is getopt-style and compatible with ntfs-3g's ntfsclone: short flags
/// bundle (`-sqo FILE`), `--name=value` works, long names may be shortened to a unique
/// prefix, and options may follow SOURCE. `-h`/`--help` prints the reference's usage text,
/// `-V`/`--version` its version text. `-d` is accepted and ignored.
///
/// This struct only sees the canonical spelling made by [`normalise`]; it holds the command
/// line as given, before the checks.
#[derive(FromArgs, Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// clone NTFS to the non-existent FILE (`-` = standard output)
    #[argh(option, short = 'o')]
    pub output: Option<String>,
    /// clone NTFS to FILE, overwriting if it exists (regular file or block device)
    #[argh(option, short = 'O')]
    pub overwrite: Option<String>,
    /// save to the special image format
    #[argh(switch, short = 's')]
    pub save_image: bool,
    /// restore from the special image format (SOURCE `-` = standard input)
    #[argh(switch, short = 'r')]
    pub restore_image: bool,
    /// continue after disk read errors (unreadable sectors are filled with a marker)
    #[argh(switch)]
    pub rescue: bool,
    /// clone *only* metadata, wiping user data and timestamps (for NTFS experts)
    #[argh(switch, short = 'm')]
    pub metadata: bool,
    /// test restoring an image, without outputting anything
    #[argh(switch, short = 'n')]
    pub no_action: bool,
    /// ignore the filesystem check result (only with --metadata or --rescue)
    #[argh(switch)]
    pub ignore_fs_check: bool,
    /// set a new volume serial number in the clone
    #[argh(switch)]
    pub new_serial: bool,
    /// set a new upper half of the volume serial number in the clone
    #[argh(switch)]
    pub new_half_serial: bool,
    /// metadata mode: do not clear the timestamps
    #[argh(switch, short = 't')]
    pub preserve_timestamps: bool,
    /// do not display any progress bars
    #[argh(switch, short = 'q')]
    pub quiet: bool,
    /// force to progress (DANGEROUS); each dirty-volume check consumes one
    #[argh(switch, short = 'f')]
    pub force: u32,
    /// metadata mode: include the full $LogFile
    #[argh(switch)]
    pub full_logfile: bool,
    /// display version information
    #[argh(switch, short = 'V')]
    pub version: bool,
    /// extension: do not write (when saving) or verify (when restoring) image checksums;
    /// must be spelled in full
    #[argh(switch)]
    pub no_checksum: bool,
    /// extension: also report progress as JSON lines on file descriptor N; must be spelled
    /// in full
    #[argh(option)]
    pub progress_fd: Option<i32>,
    /// extension: whole disks (partition table, boot areas, every partition); must be spelled
    /// in full
    #[argh(switch)]
    pub disk: bool,
    /// extension: with --disk, new disk and partition GUIDs and a new MBR disk signature in
    /// the copy; must be spelled in full
    #[argh(switch)]
    pub new_disk_ids: bool,
    /// the NTFS volume, or with --restore-image the image (`-` = standard input)
    #[argh(positional)]
    pub source: Option<String>,
}

/// Parses a command line (`argv` without argv[0]), before the post-parse checks.
pub fn parse(prog: &[u8], args: &[&[u8]]) -> core::result::Result<Args, Exit> {
    let canonical = normalise(prog, args)?;
    let refs: Vec<&str> = canonical.iter().map(String::as_str).collect();
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
    Ok(a)
}

/// The reference's checks 1–12 ([`check_combinations`], then [`check_output`] on the file
/// system).
pub fn check(a: Args) -> Result<Options> {
    let o = check_combinations(a)?;
    check_output(&o, |p| fd::stat_kind(p).map_err(|e| e.raw_os_error()))?;
    Ok(o)
}

/// The reference's checks 1–9 of option combinations (spec §2.2), in its order, and the mode
/// they leave (`-m -s` is the metadata image).
pub fn check_combinations(a: Args) -> Result<Options> {
    // `normalise` lets at most one of -o and -O through.
    let (output, overwrite) = match (a.output, a.overwrite) {
        (Some(o), _) => (Some(o), false),
        (None, Some(o)) => (Some(o), true),
        (None, None) => (None, false),
    };
    if !a.no_action && output.is_none() {
        return Err(Error::Usage(text!("You must specify an output file.\n")));
    }
    let Some(source) = a.source else {
        return Err(Error::Usage(text!("You must specify a device file.\n")));
    };
    if !a.restore_image && source == "-" {
        return Err(Error::Usage(text!(
            "Only special images can be read from standard input\n"
        )));
    }
    let metadata_image = a.metadata && a.save_image;
    let metadata = a.metadata && !a.save_image;
    let save_image = a.save_image && !a.metadata;
    if a.metadata && a.restore_image {
        return Err(Error::fatal(format_args!(
            "Restoring only metadata from an image is not supported!\n"
        )));
    }
    if metadata && output.as_deref() == Some("-") {
        return Err(Error::fatal(format_args!(
            "Cloning only metadata to stdout isn't supported!\n"
        )));
    }
    if a.ignore_fs_check && !a.metadata && !a.rescue {
        return Err(Error::fatal(format_args!(
            "Filesystem check can be ignored only for metadata cloning or rescue situations!\n"
        )));
    }
    if save_image && a.restore_image {
        return Err(Error::fatal(format_args!(
            "Saving and restoring an image at the same time is not supported!\n"
        )));
    }
    if a.no_action && !a.restore_image {
        return Err(Error::fatal(format_args!(
            "A restoring test requires the restore option!\n"
        )));
    }
    if a.no_action && output.is_some() {
        return Err(Error::fatal(format_args!(
            "A restoring test requires not defining any output!\n"
        )));
    }
    let mode = if metadata_image {
        Mode::MetadataImage
    } else if metadata {
        Mode::Metadata
    } else if a.restore_image && a.no_action {
        Mode::TestRestore
    } else if a.restore_image {
        Mode::Restore
    } else if save_image {
        Mode::Save
    } else {
        Mode::Clone
    };
    if a.new_disk_ids && !a.disk {
        return Err(Error::message(format_args!(
            "--new-disk-ids applies to whole disks only (with --disk)"
        )));
    }
    if a.disk && a.metadata {
        return Err(Error::message(format_args!(
            "--disk does not combine with --metadata"
        )));
    }
    let new_serial = if a.new_serial {
        Serial::Full
    } else if a.new_half_serial {
        Serial::Half
    } else {
        Serial::Keep
    };
    Ok(Options {
        mode,
        source,
        output,
        overwrite,
        rescue: a.rescue,
        ignore_fs_check: a.ignore_fs_check,
        new_serial,
        preserve_timestamps: a.preserve_timestamps,
        quiet: a.quiet,
        force: a.force,
        full_logfile: a.full_logfile,
        no_checksum: a.no_checksum,
        progress_fd: a.progress_fd,
        disk: a.disk,
        new_disk_ids: a.new_disk_ids,
    })
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
    if kind == Kind::Block && o.mode.is_metadata() && o.force == 0 {
        return Err(Error::fatal(format_args!(
            "Cloning only metadata to a block device does not usually make sense, aborting...\n\
             If you were instructed to do this by a developer and/or are sure that this is what you \
             want to do, run this utility again but this time add the force option, i.e. add \
             '--force' to the command line arguments."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Args {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        parse(b"ntfsclone", &a).unwrap()
    }

    #[test]
    fn parse_fills_args() {
        let a = p(&[
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
            a,
            Args {
                source: Some("vol".into()),
                overwrite: Some("out".into()),
                save_image: true,
                quiet: true,
                force: 2,
                new_serial: true,
                new_half_serial: true,
                preserve_timestamps: true,
                full_logfile: true,
                ignore_fs_check: true,
                rescue: true,
                ..Args::default()
            }
        );
        let o = check_combinations(a).unwrap();
        assert_eq!(
            o,
            Options {
                mode: Mode::Save,
                source: "vol".into(),
                output: Some("out".into()),
                overwrite: true,
                quiet: true,
                force: 2,
                new_serial: Serial::Full,
                preserve_timestamps: true,
                full_logfile: true,
                ignore_fs_check: true,
                rescue: true,
                ..Options::default()
            }
        );
        let a = p(&["-rn", "-", "--no-checksum", "--progress-fd", "7", "-m"]);
        assert!(a.restore_image && a.no_action && a.metadata && a.no_checksum);
        assert_eq!(
            (a.source.as_deref(), a.output, a.overwrite, a.progress_fd),
            (Some("-"), None, None, Some(7))
        );
        let serial = |args: &[&str]| check_combinations(p(args)).unwrap().new_serial;
        assert_eq!(serial(&["--new-half-serial", "-o", "x", "v"]), Serial::Half);
        assert_eq!(serial(&["--new-serial", "-o", "x", "v"]), Serial::Full);
        assert_eq!(serial(&["-o", "x", "v"]), Serial::Keep);
        assert_eq!(p(&["-o", "x"]).output.as_deref(), Some("x"));
    }

    fn check(args: &[&str]) -> Result<Options> {
        check_combinations(p(args))
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
        let mode = |args: &[&str]| check(args).unwrap().mode;
        assert_eq!(
            mode(&["-m", "-s", "-o", "-", "--ignore-fs-check", "v"]),
            Mode::MetadataImage
        );
        assert_eq!(mode(&["-m", "-o", "x", "v"]), Mode::Metadata);
        assert_eq!(
            mode(&["--ignore-fs-check", "--rescue", "-o", "x", "v"]),
            Mode::Clone
        );
        assert_eq!(mode(&["-s", "-o", "x", "v"]), Mode::Save);
        assert_eq!(mode(&["-n", "-r", "-"]), Mode::TestRestore);
        assert_eq!(mode(&["-r", "-o", "-", "-"]), Mode::Restore);
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
