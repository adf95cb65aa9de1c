//! Content sniffing: what the first bytes of a fetched file say it is, so a web page or an
//! error document served with status 200 is refused as "not audio (sniffed: html)" before any
//! decoder sees it, whatever its Content-Type claims.
//!
//! Pure: it looks at a byte slice and reads nothing else.

use std::fmt;

/// The containers trunx decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioKind {
    Wav,
    Mp3,
    Flac,
    Ogg,
}

impl AudioKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AudioKind::Wav => "wav",
            AudioKind::Mp3 => "mp3",
            AudioKind::Flac => "flac",
            AudioKind::Ogg => "ogg",
        }
    }

    /// The file extension that hints the decoder's probe.
    pub fn extension(self) -> &'static str {
        self.as_str()
    }
}

impl fmt::Display for AudioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a non-audio body looks like, for the error message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not audio (sniffed: {sniffed})")]
pub struct NotAudio {
    /// `empty`, `html`, `xml`, `json`, `text`, `pdf`, `png`, `jpeg`, `gif`, `zip`, `gzip`, or
    /// `unknown bytes 3c 21 ...` (the first 8 bytes in hex).
    pub sniffed: String,
}

/// Bytes of an ID3v2 header.
const ID3_HEADER: usize = 10;

/// Names the container of `bytes` (the whole file or at least its first few kilobytes).
pub fn sniff(bytes: &[u8]) -> Result<AudioKind, NotAudio> {
    sniff_after_tags(bytes, 0)
}

fn sniff_after_tags(bytes: &[u8], depth: u8) -> Result<AudioKind, NotAudio> {
    if (bytes.starts_with(b"RIFF") || bytes.starts_with(b"RF64"))
        && bytes.get(8..12) == Some(b"WAVE")
    {
        return Ok(AudioKind::Wav);
    }
    if bytes.starts_with(b"fLaC") {
        return Ok(AudioKind::Flac);
    }
    if bytes.starts_with(b"OggS") {
        return Ok(AudioKind::Ogg);
    }
    if bytes.starts_with(b"ID3") && bytes.len() >= ID3_HEADER {
        // ID3v2 (its size is 4 syncsafe bytes) may front MP3 and, rarely, FLAC: look past it
        // when the rest is at hand, otherwise call it MP3, the usual case.
        let size = bytes[6..10]
            .iter()
            .fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7f));
        let footer = if bytes[5] & 0x10 != 0 { 10 } else { 0 };
        let rest = ID3_HEADER + size + footer;
        if depth < 2 && bytes.len() > rest + 4 {
            return match sniff_after_tags(&bytes[rest..], depth + 1) {
                Ok(kind) => Ok(kind),
                Err(_) => Ok(AudioKind::Mp3),
            };
        }
        return Ok(AudioKind::Mp3);
    }
    if is_mpeg_audio_frame(bytes) {
        return Ok(AudioKind::Mp3);
    }
    Err(NotAudio {
        sniffed: describe(bytes),
    })
}

/// An MPEG audio frame header (any version, layer I-III) with a valid bitrate and rate index.
/// Layer bits `00` are AAC in ADTS, which trunx does not decode.
fn is_mpeg_audio_frame(bytes: &[u8]) -> bool {
    let [a, b, c, ..] = bytes else {
        return false;
    };
    let sync = *a == 0xff && b & 0xe0 == 0xe0;
    let version = (b >> 3) & 0b11;
    let layer = (b >> 1) & 0b11;
    let bitrate = c >> 4;
    let rate = (c >> 2) & 0b11;
    sync && version != 0b01 && layer != 0b00 && bitrate != 0b1111 && rate != 0b11
}

/// A short name for common non-audio content.
fn describe(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head);
    let trimmed = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .to_ascii_lowercase();
    let starts = |p: &[u8]| bytes.starts_with(p);
    if bytes.is_empty() {
        "empty".into()
    } else if trimmed.starts_with("<!doctype html")
        || trimmed.starts_with("<html")
        || trimmed.starts_with("<head")
        || trimmed.starts_with("<body")
        || (trimmed.starts_with('<') && trimmed.contains("<html"))
    {
        "html".into()
    } else if trimmed.starts_with("<?xml") || trimmed.starts_with('<') {
        "xml".into()
    } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
        "json".into()
    } else if starts(b"%PDF") {
        "pdf".into()
    } else if starts(b"\x89PNG") {
        "png".into()
    } else if starts(b"\xff\xd8\xff") {
        "jpeg".into()
    } else if starts(b"GIF8") {
        "gif".into()
    } else if starts(b"PK\x03\x04") {
        "zip".into()
    } else if starts(b"\x1f\x8b") {
        "gzip".into()
    } else if head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "text".into()
    } else {
        let hex: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("unknown bytes {}", hex.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_header() -> Vec<u8> {
        let mut v = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();
        v.extend_from_slice(&[16, 0, 0, 0, 1, 0, 1, 0]);
        v
    }

    #[test]
    fn each_container_by_its_magic() {
        assert_eq!(sniff(&wav_header()), Ok(AudioKind::Wav));
        assert_eq!(sniff(b"RF64\xff\xff\xff\xffWAVEds64"), Ok(AudioKind::Wav));
        assert_eq!(sniff(b"fLaC\x00\x00\x00\x22"), Ok(AudioKind::Flac));
        assert_eq!(sniff(b"OggS\x00\x02\x00\x00"), Ok(AudioKind::Ogg));
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz.
        assert_eq!(sniff(&[0xff, 0xfb, 0x90, 0x64, 0, 0]), Ok(AudioKind::Mp3));
        // MPEG-2 layer III, 64 kbit/s, 22.05 kHz.
        assert_eq!(sniff(&[0xff, 0xf3, 0x80, 0xc4]), Ok(AudioKind::Mp3));
        assert_eq!(
            sniff(b"ID3\x04\x00\x00\x00\x00\x00\x00"),
            Ok(AudioKind::Mp3)
        );
    }

    #[test]
    fn id3_is_looked_past_when_the_rest_is_there() {
        let mut tagged = b"ID3\x04\x00\x00\x00\x00\x00\x05".to_vec();
        tagged.extend_from_slice(&[0; 5]);
        let mut flac = tagged.clone();
        flac.extend_from_slice(b"fLaC\x00\x00\x00\x22");
        assert_eq!(sniff(&flac), Ok(AudioKind::Flac));
        let mut mp3 = tagged.clone();
        mp3.extend_from_slice(&[0xff, 0xfb, 0x90, 0x64, 0, 0]);
        assert_eq!(sniff(&mp3), Ok(AudioKind::Mp3));
    }

    #[test]
    fn near_misses_are_not_audio() {
        // RIFF without WAVE (an AVI), a bad MPEG header (reserved version, free-form bitrate
        // index 15, reserved rate) and AAC in ADTS (layer 00).
        for bytes in [
            &b"RIFF\x00\x00\x00\x00AVI LIST"[..],
            &[0xff, 0xeb, 0x90, 0x64][..],
            &[0xff, 0xfb, 0xf0, 0x64][..],
            &[0xff, 0xfb, 0x9c, 0x64][..],
            &[0xff, 0xf1, 0x50, 0x80][..],
            &[0xff][..],
        ] {
            assert!(sniff(bytes).is_err(), "{bytes:02x?}");
        }
    }

    #[test]
    fn non_audio_is_named() {
        let name = |b: &[u8]| sniff(b).unwrap_err().sniffed;
        assert_eq!(name(b""), "empty");
        assert_eq!(
            name(b"\xef\xbb\xbf  <!DOCTYPE html><html><body>404</body></html>"),
            "html"
        );
        assert_eq!(name(b"<HTML><HEAD><TITLE>Not Found"), "html");
        assert_eq!(name(b"<!-- x --><html>"), "html");
        assert_eq!(name(b"<?xml version=\"1.0\"?><Error>"), "xml");
        assert_eq!(name(b"{\"error\":\"not found\"}"), "json");
        assert_eq!(name(b"%PDF-1.7"), "pdf");
        assert_eq!(name(b"\x89PNG\r\n\x1a\n"), "png");
        assert_eq!(name(b"\xff\xd8\xff\xe0"), "jpeg");
        assert_eq!(name(b"GIF89a"), "gif");
        assert_eq!(name(b"PK\x03\x04"), "zip");
        assert_eq!(name(b"\x1f\x8b\x08\x00"), "gzip");
        assert_eq!(name(b"Access denied\n"), "text");
        assert_eq!(
            name(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            "unknown bytes 00 01 02 03 04 05 06 07"
        );
        assert_eq!(
            sniff(b"<html>").unwrap_err().to_string(),
            "not audio (sniffed: html)"
        );
    }
}
