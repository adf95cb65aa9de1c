//! What the corpus needs from the outside world, as data: the Asterisk prompts it uses and
//! the lines each synthetic speaker says through espeak-ng.
//!
//! Pure and fixed (independent of the seed), so the runtime can synthesise and cache every
//! line once and reuse the cache for any seed and count.

/// Asterisk core-sounds prompts (stems under `en_US_f_Allison/`) that must exist.
pub const REQUIRED_PROMPTS: &[&str] = &[
    "hello",
    "beep",
    "ascending-2tone",
    "descending-2tone",
    "vm-intro",
    "vm-nobodyavail",
    "vm-theperson",
    "vm-isunavail",
    "vm-isonphone",
    "all-circuits-busy-now",
    "cannot-complete-as-dialed",
    "check-number-dial-again",
    "please-try-call-later",
    "im-sorry",
    "ss-noservice",
    "digits/0",
    "digits/1",
    "digits/2",
    "digits/3",
    "digits/4",
    "digits/5",
    "digits/6",
    "digits/7",
    "digits/8",
    "digits/9",
];

/// Who a speaker is in the corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpeakerKind {
    /// Answers the phone live.
    Human,
    /// Recorded a personal voicemail greeting.
    Greeter,
    /// A carrier's voicemail system voice.
    Carrier,
}

/// What a line is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A short live answer ("Hello?"), 0.4-0.9 s.
    Answer,
    /// A longer live answer ("Hello, this is Mark speaking."), 1.0-1.8 s.
    LongAnswer,
    /// A phrase of someone talking in bursts ("Who is this?").
    Ramble,
    /// A second "hello" after nobody answered.
    Again,
    /// A whole short greeting (1.5-3 s).
    GreetShort,
    /// The first sentence of a longer greeting.
    GreetOpen,
    /// A following sentence of a longer greeting.
    GreetBody,
    /// The speaker's recorded name alone (spliced into system prompts).
    Name,
}

/// One espeak-ng synthesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TtsRequest {
    pub speaker: usize,
    pub kind: SpeakerKind,
    pub role: Role,
    /// espeak-ng voice, e.g. `en-us+m3`.
    pub voice: String,
    /// Words per minute (`-s`).
    pub speed: u16,
    /// Pitch 0-99 (`-p`).
    pub pitch: u8,
    pub text: String,
}

impl TtsRequest {
    /// Arguments for `espeak-ng`, before `-w FILE TEXT`.
    pub fn espeak_args(&self) -> Vec<String> {
        vec![
            "-v".to_string(),
            self.voice.clone(),
            "-s".to_string(),
            self.speed.to_string(),
            "-p".to_string(),
            self.pitch.to_string(),
        ]
    }

    /// Stable cache key over the voice, the arguments and the text (FNV-1a 64, hex).
    pub fn cache_key(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            h ^= 0xff;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        };
        feed(b"espeak-ng");
        for a in self.espeak_args() {
            feed(a.as_bytes());
        }
        feed(self.text.as_bytes());
        format!("{h:016x}")
    }

    /// Short tag for the notes column: `en-us+m3`.
    pub fn tag(&self) -> &str {
        &self.voice
    }
}

struct Speaker {
    kind: SpeakerKind,
    first: &'static str,
    last: &'static str,
    voice: &'static str,
    speed: u16,
    pitch: u8,
}

const fn sp(
    kind: SpeakerKind,
    first: &'static str,
    last: &'static str,
    voice: &'static str,
    speed: u16,
    pitch: u8,
) -> Speaker {
    Speaker {
        kind,
        first,
        last,
        voice,
        speed,
        pitch,
    }
}

use SpeakerKind::{Carrier, Greeter, Human};

const SPEAKERS: &[Speaker] = &[
    sp(Human, "Mark", "Johnson", "en-us+m3", 165, 45),
    sp(Human, "Sarah", "Lee", "en-us+f2", 170, 60),
    sp(Human, "James", "Wright", "en-gb+m1", 160, 40),
    sp(Human, "Emma", "Clarke", "en-gb-x-rp+f4", 155, 65),
    sp(Human, "Carlos", "Rivera", "en-029+m5", 175, 50),
    sp(Human, "Linda", "Moore", "en-us+f5", 150, 55),
    sp(Human, "Tom", "Mackay", "en-gb-scotland+m7", 165, 35),
    sp(Human, "Priya", "Shah", "en-us+f1", 180, 70),
    sp(Human, "Mike", "Russo", "en-us-nyc+m2", 185, 50),
    sp(Human, "Grace", "Hall", "en-gb-x-gbclan+f3", 160, 58),
    sp(Greeter, "Rachel", "Collins", "en-us+f3", 165, 55),
    sp(Greeter, "David", "Miller", "en-us+m1", 160, 45),
    sp(Greeter, "Olivia", "Bennett", "en-gb+f2", 158, 62),
    sp(Greeter, "Kevin", "Turner", "en-us+m4", 172, 48),
    sp(Greeter, "Helen", "Price", "en-gb-x-rp+f1", 150, 60),
    sp(Greeter, "Tony", "Marino", "en-029+m6", 168, 42),
    sp(Greeter, "Megan", "Ortiz", "en-us+f4", 178, 66),
    sp(Greeter, "Robert", "Hughes", "en-gb+m3", 150, 38),
    sp(Carrier, "", "", "en-us", 150, 50),
    sp(Carrier, "", "", "en-gb-x-rp+f5", 145, 55),
];

const ANSWERS: &[&str] = &[
    "Hello?",
    "Hello.",
    "Hi.",
    "Yeah?",
    "Yes?",
    "Hello, yes?",
    "Speaking.",
    "Hi there.",
];
const LONG_ANSWERS: &[&str] = &[
    "Hello, this is {first} speaking.",
    "Hi, {first} speaking, who's this?",
    "Good afternoon, {last} residence.",
    "Hello, who's calling please?",
    "Yeah, hi, this is {first}.",
    "Hello, {first} here.",
    "Hi, who's this?",
    "Hello, {last} residence.",
];
const RAMBLES: &[&str] = &[
    "Yeah, hello?",
    "Who is this?",
    "Hello?",
    "Can you hear me?",
    "Sorry, who's calling?",
    "I can't hear you.",
    "What?",
    "Hi, yeah.",
    "Is somebody there?",
];
const AGAIN: &[&str] = &["Hello?", "Hello? Anyone there?", "Hello? Hello."];
const GREET_SHORT: &[&str] = &[
    "Hi, it's {first}. Leave a message.",
    "You've reached {first}. Leave a message.",
    "{first} here, leave a message after the tone.",
    "Please leave a message after the beep.",
    "Hey, it's {first}, leave a message.",
    "Leave your name and number, thanks.",
    "Hi, leave a message and I'll call you back.",
    "Leave a message.",
];
const GREET_OPEN: &[&str] = &[
    "Hi, you've reached {first}. I can't take your call right now, please leave a message after the tone.",
    "Hello, you have reached the voicemail of {first} {last}.",
    "Thank you for calling {last} and associates. Our office is currently closed.",
    "Hey, this is {first}. Sorry I missed you.",
    "Hi, you've reached {first} and the {last} family. We can't come to the phone right now.",
    "Hi, this is {first} {last}.",
];
const GREET_BODY: &[&str] = &[
    "I'm either on the other line or away from my desk.",
    "Please leave your name, number, and a brief message, and I will return your call as soon as possible.",
    "Our business hours are Monday through Friday, nine A M to five P M.",
    "If this is an emergency, please hang up and dial nine one one.",
    "I'll get back to you as soon as I can. Thanks, and have a great day!",
    "Leave a message after the beep and we'll call you back.",
    "For faster service, you can also send me a text message.",
    "Please leave a message.",
];
const CARRIER_OPEN: &[&str] = &[
    "The number you have dialed, five five five, two three one, four four eight seven, is not available.",
    "Your call has been forwarded to an automated voice messaging system.",
    "The person you are trying to reach is not available.",
    "The subscriber you have dialed is not available.",
];
const CARRIER_BODY: &[&str] = &[
    "At the tone, please record your message. When you have finished recording, you may hang up or press pound for more options.",
    "Please leave a message after the tone.",
    "At the tone, please record your message.",
];
const CARRIER_SHORT: &[&str] = &[
    "Please leave a message after the tone.",
    "Record your message at the tone.",
];

/// Every line of every speaker, in a fixed order.
pub fn tts_requests() -> Vec<TtsRequest> {
    let mut out = Vec::new();
    for (i, s) in SPEAKERS.iter().enumerate() {
        let lines: Vec<(Role, &[&str])> = match s.kind {
            Human => vec![
                (Role::Answer, ANSWERS),
                (Role::LongAnswer, LONG_ANSWERS),
                (Role::Ramble, RAMBLES),
                (Role::Again, AGAIN),
            ],
            Greeter => vec![
                (Role::GreetShort, GREET_SHORT),
                (Role::GreetOpen, GREET_OPEN),
                (Role::GreetBody, GREET_BODY),
                (Role::Name, &["{first} {last}"]),
            ],
            Carrier => vec![
                (Role::GreetShort, CARRIER_SHORT),
                (Role::GreetOpen, CARRIER_OPEN),
                (Role::GreetBody, CARRIER_BODY),
            ],
        };
        for (role, texts) in lines {
            for t in texts {
                out.push(TtsRequest {
                    speaker: i,
                    kind: s.kind,
                    role,
                    voice: s.voice.to_string(),
                    // People answer faster than they read a greeting.
                    speed: s.speed
                        + match role {
                            Role::LongAnswer => 25,
                            Role::Ramble => 15,
                            _ => 0,
                        },
                    pitch: s.pitch,
                    text: t.replace("{first}", s.first).replace("{last}", s.last),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_stable_and_keys_unique_per_text() {
        let a = tts_requests();
        assert_eq!(a, tts_requests());
        assert!(a.len() > 200);
        assert!(a.iter().all(|r| !r.text.contains('{')));
        // Identical voice+text share a key; different ones do not.
        let mut seen = std::collections::BTreeMap::new();
        for r in &a {
            let id = (r.voice.clone(), r.speed, r.pitch, r.text.clone());
            if let Some(prev) = seen.insert(r.cache_key(), id.clone()) {
                assert_eq!(prev, id);
            }
        }
        let mut other = a[0].clone();
        other.text.push('!');
        assert_ne!(other.cache_key(), a[0].cache_key());
        assert_eq!(a[0].cache_key().len(), 16);
    }
}
