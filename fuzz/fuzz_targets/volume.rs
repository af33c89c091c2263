#![no_main]
//! cargo-fuzz target: patches (see `targets::volume`) applied to a real volume, then the
//! open, the MFT walk and the cluster accounting. The seed volume is `$NTFSCLONE_FUZZ_VOLUME`,
//! or `seeds/volume.ntfs` (made by `make fuzz` from the clean 10 MiB volume of the corpus).
#[path = "../targets.rs"]
mod targets;

use std::sync::OnceLock;

fn seed() -> &'static [u8] {
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    SEED.get_or_init(|| {
        let p = std::env::var("NTFSCLONE_FUZZ_VOLUME")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/volume.ntfs").into());
        std::fs::read(&p).unwrap_or_else(|e| panic!("seed volume {p}: {e} (run `make fuzz`)"))
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::volume(seed(), data));
