//! The `ntfsclone` binary: parse, run, print the error, exit 0 or 1.
fn main() -> std::process::ExitCode {
    ntfsclone::cli::main()
}
