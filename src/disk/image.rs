//! The disk image format (placeholder; see docs/disk-image.md).
