//! The `ntfsclone` binary: banner, parse and check the command line, run, print the error,
//! exit 0 or 1.
use ntfsclone::cli::{self, Exit, BANNER, USAGE, VERSION};
use ntfsclone::error::Error;
use ntfsclone::report::Report;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

fn main() -> ExitCode {
    Report::err(format_args!("{BANNER}"));
    let argv: Vec<Vec<u8>> = std::env::args_os().map(OsStringExt::into_vec).collect();
    let prog: &[u8] = argv.first().map_or(b"ntfsclone", Vec::as_slice);
    let args: Vec<&[u8]> = argv.iter().skip(1).map(Vec::as_slice).collect();
    let parsed = match cli::parse(prog, &args) {
        Ok(a) => a,
        Err(Exit::Help) => {
            stderr_bytes(USAGE.as_bytes());
            return ExitCode::SUCCESS;
        }
        Err(Exit::Version) => {
            stderr_bytes(VERSION.as_bytes());
            return ExitCode::SUCCESS;
        }
        Err(Exit::Usage(mut msg)) => {
            msg.extend_from_slice(USAGE.as_bytes());
            stderr_bytes(&msg);
            return ExitCode::FAILURE;
        }
    };
    let opts = match cli::check(parsed) {
        Ok(o) => o,
        Err(e) => {
            // The checks run before msg_out is chosen: their messages go to stderr.
            print_error(&e, true);
            return ExitCode::FAILURE;
        }
    };
    match ntfsclone::ops::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(&e, opts.output_is_stdout());
            ExitCode::FAILURE
        }
    }
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
