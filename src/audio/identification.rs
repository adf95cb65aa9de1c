//! The built-in identification message: what a person hears when nobody takes their call
//! within 2 s of their greeting (TSR 16 CFR 310.4(b)(4)(iii): a recorded message with the
//! seller's name and a number to call back). A campaign names its own with
//! `mode.identificationAudioUrl`; an `ai` campaign without one plays this clip, so it still
//! identifies itself.
//!
//! Owns the clip's bytes (embedded in the binary) and its text. It must not decide when the
//! message plays ([`crate::call::identification`] does) nor fetch anything.
//!
//! The clip is `audio-fixtures/prompts/identification.wav` (8 kHz mono 16-bit, 9.8 s),
//! rendered from [`DEFAULT_TEXT`] with
//! `espeak-ng -v en-us -s 170 -w x.wav "$TEXT" && sox x.wav -r 8000 -c 1 -b 16 identification.wav`.

use super::prompt::{Prompt, PromptError, PromptOptions};

/// What the built-in clip says. It cannot know the seller's name, so it points at the caller
/// ID (name and number, which must be callable: 47 CFR 64.1601(e)); an operator should record
/// their own with the company name and callback number.
pub const DEFAULT_TEXT: &str = "Sorry we missed you. This call was made for the company named \
     on your caller I D. To reach us, or to stop our calls, please call back the number that \
     called you. Goodbye.";

/// The built-in clip as shipped (WAV).
pub const DEFAULT_WAV: &[u8] = include_bytes!("../../audio-fixtures/prompts/identification.wav");

/// The built-in clip, prepared like any prompt (decoded, levelled, pre-encoded).
pub fn default_prompt() -> Result<Prompt, PromptError> {
    Prompt::from_bytes(
        "built-in identification message",
        DEFAULT_WAV.to_vec(),
        &PromptOptions::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_clip_is_a_short_playable_message() {
        let p = default_prompt().unwrap();
        let ms = p.duration_ms();
        assert!((5_000..=12_000).contains(&ms), "{ms} ms");
        assert_eq!(p.source_rate, 8_000);
        // Speech, not silence: a good share of its frames carry energy.
        let loud = p
            .pcm
            .chunks(160)
            .filter(|f| f.iter().map(|s| i64::from(*s).abs()).max().unwrap_or(0) > 1_000)
            .count();
        assert!(loud * 2 > p.pcm.len() / 160, "{loud} loud frames");
    }
}
