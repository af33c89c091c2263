//! The one error type of the crate.
//!
//! The reference tool ends every failure with one of two shapes, and scripts match on them:
//! `err_exit` prints `ERROR: <text>` and `perr_exit` prints `ERROR(<errno>): <text>: <strerror>`.
//! [`Error::Fatal`] and [`Error::Os`] reproduce those. Usage errors print the usage text after
//! the message. Our own errors (cases where the reference has no message, or a wrong one) are
//! [`Error::Corrupt`] and [`Error::Message`]; they say what and where.
use core::fmt::{self, Write as _};

/// Fixed-capacity message text: errors never allocate.
pub type Text = heapless::String<512>;

/// Crate-wide result.
pub type Result<T> = core::result::Result<T, Error>;

/// Everything that can go wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A system call failed (`perr_exit` shape): `ERROR(errno): what: strerror`.
    Os {
        /// What failed, as the reference words it.
        what: Text,
        /// The errno of the failed call.
        errno: i32,
    },
    /// A reference message (`err_exit` shape): `ERROR: text`. `text` carries the reference's own
    /// trailing newline, or none where the reference prints none.
    Fatal(Text),
    /// Option error: `ERROR: text` (if non-empty) followed by the usage text, on stderr.
    Usage(Text),
    /// Untrusted bytes are wrong: `what` is wrong at byte offset `at` of `place`
    /// (e.g. "MFT record 5", "image", "boot sector").
    Corrupt {
        /// The structure that holds the bytes.
        place: Text,
        /// What is wrong.
        what: &'static str,
        /// Byte offset in `place`.
        at: u64,
    },
    /// Our own one-line message (`ERROR: text` and a newline), for a case where the reference
    /// has no message or a wrong one.
    Message(Text),
    /// A pipe we write to was closed by the reader (EPIPE): exit quietly with status 1.
    BrokenPipe,
    /// The message was already printed (multi-line reference messages): exit 1, print nothing.
    Reported,
}

/// Formats into a [`Text`], truncating (with "...") rather than failing when it is too long.
pub fn text(args: fmt::Arguments) -> Text {
    let mut t = Text::new();
    if t.write_fmt(args).is_err() {
        while t.len() > 505 {
            t.pop();
        }
        let _ = t.push_str("...");
    }
    t
}

/// `format!`-like constructor for [`Text`].
#[macro_export]
macro_rules! text {
    ($($arg:tt)*) => { $crate::error::text(format_args!($($arg)*)) };
}

impl Error {
    /// `perr_exit` shape with a static description.
    pub fn os(what: &str, errno: i32) -> Self {
        Error::Os {
            what: text(format_args!("{what}")),
            errno,
        }
    }
    /// `err_exit` shape.
    pub fn fatal(args: fmt::Arguments) -> Self {
        Error::Fatal(text(args))
    }
    /// Corruption at a byte offset of a named place.
    pub fn corrupt(place: fmt::Arguments, what: &'static str, at: u64) -> Self {
        Error::Corrupt {
            place: text(place),
            what,
            at,
        }
    }
    /// Our own one-line message ([`Error::Message`]).
    pub fn message(args: fmt::Arguments) -> Self {
        Error::Message(text(args))
    }
    /// The errno, if this is a system-call error.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Os { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Linux errno values used by the no_std code (it cannot reach libc's constants).
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such file or directory.
    pub const ENOENT: i32 = 2;
    /// Interrupted system call.
    pub const EINTR: i32 = 4;
    /// Input/output error.
    pub const EIO: i32 = 5;
    /// Cannot allocate memory.
    pub const ENOMEM: i32 = 12;
    /// File exists.
    pub const EEXIST: i32 = 17;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// No space left on device.
    pub const ENOSPC: i32 = 28;
    /// Illegal seek.
    pub const ESPIPE: i32 = 29;
    /// Broken pipe.
    pub const EPIPE: i32 = 32;
    /// Numerical result out of range.
    pub const ERANGE: i32 = 34;
    /// Operation not supported.
    pub const EOPNOTSUPP: i32 = 95;
}

/// `strerror` text for the errno values we can meet (glibc wording, as the reference prints).
pub fn strerror(errno: i32) -> &'static str {
    match errno {
        0 => "Success",
        1 => "Operation not permitted",
        2 => "No such file or directory",
        4 => "Interrupted system call",
        5 => "Input/output error",
        6 => "No such device or address",
        9 => "Bad file descriptor",
        11 => "Resource temporarily unavailable",
        12 => "Cannot allocate memory",
        13 => "Permission denied",
        16 => "Device or resource busy",
        17 => "File exists",
        19 => "No such device",
        20 => "Not a directory",
        21 => "Is a directory",
        22 => "Invalid argument",
        25 => "Inappropriate ioctl for device",
        26 => "Text file busy",
        27 => "File too large",
        28 => "No space left on device",
        29 => "Illegal seek",
        30 => "Read-only file system",
        32 => "Broken pipe",
        34 => "Numerical result out of range",
        36 => "File name too long",
        61 => "No data available",
        75 => "Value too large for defined data type",
        95 => "Operation not supported",
        122 => "Disk quota exceeded",
        _ => "Unknown error",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os { what, errno } => {
                writeln!(f, "ERROR({errno}): {what}: {}", strerror(*errno))
            }
            Error::Fatal(t) => write!(f, "ERROR: {t}"),
            Error::Usage(t) if t.is_empty() => Ok(()),
            Error::Usage(t) => write!(f, "ERROR: {t}"),
            Error::Corrupt { place, what, at } => {
                writeln!(f, "ERROR: {place}: {what} at byte offset {at} (0x{at:x})")
            }
            Error::Message(t) => writeln!(f, "ERROR: {t}"),
            Error::BrokenPipe | Error::Reported => Ok(()),
        }
    }
}
