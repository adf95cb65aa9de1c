//! Prompt audio (WAV/MP3/FLAC/OGG... sniffed): decode, downmix, resample to 8 kHz, G.711.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trunx::audio::prompt::{Prompt, PromptOptions};

fuzz_target!(|data: &[u8]| {
    let _ = trunx::audio::sniff::sniff(data);
    let options = PromptOptions { max_seconds: 5, ..PromptOptions::default() };
    let _ = Prompt::from_bytes("fuzz", data.to_vec(), &options);
});
