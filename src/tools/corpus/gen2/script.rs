//! Generator 2's speakers and lines, as data: espeak-ng voices with named variants (none of
//! generator 1's `+mN`/`+fN` speakers), each line at its own speed and pitch, so the same
//! speaker is heard over a wide range (100-270 words per minute, pitch 5-95).
//!
//! Pure and fixed: the runtime synthesises and caches every line once for any seed.

use crate::tools::corpus::script::{Role, SpeakerKind, TtsRequest};

/// What a line is for in generator 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Line {
    /// "Hello?" and other one-breath answers.
    Short,
    /// A sentence-long answer.
    Medium,
    /// A long run-on answer ("hello, yes, this is Mark, who's calling please, I was just...").
    Ramble,
    /// The second part of a two-part hello.
    Again,
    /// A complete short greeting.
    GreetShort,
    /// First sentence of a longer greeting.
    GreetOpen,
    /// A middle sentence of a longer greeting.
    GreetBody,
    /// Last words of a greeting.
    GreetClose,
    /// A carrier/system voicemail prompt.
    System,
}

struct Voice {
    kind: SpeakerKind,
    first: &'static str,
    last: &'static str,
    voice: &'static str,
    speed: u16,
    pitch: u8,
}

const fn v(
    kind: SpeakerKind,
    first: &'static str,
    last: &'static str,
    voice: &'static str,
    speed: u16,
    pitch: u8,
) -> Voice {
    Voice {
        kind,
        first,
        last,
        voice,
        speed,
        pitch,
    }
}

use SpeakerKind::{Carrier, Greeter, Human};

const VOICES: &[Voice] = &[
    v(Human, "Mark", "Donovan", "en-us+Andy", 175, 40),
    v(Human, "Ruth", "Okafor", "en-gb-x-rp+Annie", 160, 70),
    v(Human, "Angus", "Reid", "en-gb-scotland+Gene", 150, 30),
    v(Human, "Marcia", "Bailey", "en-029+Belinda", 190, 65),
    v(Human, "Jo", "Fenwick", "en+f3", 200, 75),
    v(Human, "Dale", "Kowalski", "en+m7", 140, 20),
    v(Human, "Alicia", "Ramos", "en-us+Alicia", 215, 80),
    v(Human, "Jack", "Perry", "en-gb-x-gbcwmd+Jacky", 180, 45),
    v(Human, "Lee", "Chen", "en-us-nyc+Lee", 230, 50),
    v(Human, "Mario", "Greco", "en-gb+Mario", 165, 35),
    v(Human, "Dot", "Hammond", "en-us+grandma", 125, 85),
    v(Human, "Travis", "Boyd", "en-gb-x-rp+travis", 195, 25),
    v(Greeter, "Linda", "Walsh", "en-us+Linda", 165, 60),
    v(Greeter, "Michael", "Stone", "en-gb+Michael", 150, 35),
    v(Greeter, "Zac", "Morgan", "en-us+Zac", 200, 50),
    v(Greeter, "Andrea", "Vidal", "en-gb-x-rp+Andrea", 170, 72),
    v(Greeter, "Ed", "Baptiste", "en-029+Ed", 145, 40),
    v(Greeter, "Shelby", "Kane", "en-us-nyc+shelby", 210, 68),
    v(Greeter, "Victor", "Lund", "en-us+victor", 135, 28),
    v(Greeter, "Anika", "Patel", "en-gb-x-gbcwmd+anika", 185, 78),
    v(Carrier, "", "", "en-us+Mr_Serious", 150, 45),
    v(Carrier, "", "", "en-gb-x-rp+Steph2", 140, 55),
    v(Carrier, "", "", "en-us+klatt", 160, 50),
];

const SHORT: &[&str] = &[
    "Hello?",
    "Hi!",
    "Yeah, hello.",
    "Hello, yes?",
    "Mm, hello?",
    "Yep.",
    "Who's this?",
    "Good morning.",
    "Hiya.",
    "Speaking!",
    "Hello, who is it?",
    "Yo.",
];
const MEDIUM: &[&str] = &[
    "Hello, this is {first}, how can I help you?",
    "Good evening, {last} household.",
    "Hi, yeah, {first} speaking.",
    "Yes, hello, who am I speaking with?",
    "Hello? Sorry, I didn't catch that.",
    "{first} {last}, hello?",
    "Hey, what's up?",
    "Hello, {last} plumbing, this is {first}.",
];
const RAMBLE: &[&str] = &[
    "Hello, yes, this is {first}, who's calling please, I was just about to head out the door.",
    "Hi, yeah, hello, sorry, I had to find the phone, it was under the couch, who is this?",
    "Yes hello, {first} speaking, if this is about the car warranty I am really not interested.",
    "Hello? Oh hi, I thought you were my sister calling back, what can I do for you?",
    "Good afternoon, {last} residence, {first} speaking, how may I help you today?",
    "Hello, hello, yeah I can hear you now, sorry the line was breaking up a bit there.",
    "Yeah, hi, this is {first}, I'm just driving at the moment so make it quick please.",
];
const AGAIN: &[&str] = &[
    "Hello?",
    "Hello? Is anyone there?",
    "Hello, can you hear me?",
    "Hey, who is this?",
    "Hello? I can't hear you.",
];
const GREET_SHORT: &[&str] = &[
    "Hi, {first} here, leave a message.",
    "It's {first}, you know what to do.",
    "Hey, leave one after the beep.",
    "{first}. Message please.",
    "Not here, leave a message.",
    "You've got {first}, talk to me.",
    "Hi, please leave a message.",
];
const GREET_OPEN: &[&str] = &[
    "Hi there, you've reached the phone of {first} {last}.",
    "Hello, and thanks for calling {last} and sons.",
    "Hey, it's {first}, sorry I can't pick up right now.",
    "Welcome to {last} dental, our office is now closed.",
    "Hi, you've reached {first}, I'm probably out walking the dog.",
    "Good day, this is {first} {last}.",
];
const GREET_BODY: &[&str] = &[
    "I'm away from the phone at the moment, or I'm on another call.",
    "Please leave your name, your number, and the reason for your call.",
    "Our regular hours are eight to six, Monday to Saturday.",
    "If your call is urgent, you can reach me on my mobile.",
    "I check my messages every evening, so I will get back to you soon.",
    "For appointments, please press one, or stay on the line.",
    "If you are calling about the delivery, it will arrive on Thursday.",
    "You can also send me an email, the address is on our website.",
    "Speak clearly and take your time.",
    "Don't forget to leave your number, even if you think I have it.",
];
const GREET_CLOSE: &[&str] = &[
    "Thanks, bye!",
    "Have a good one.",
    "Talk soon.",
    "Wait for the tone.",
    "Bye now.",
];
const SYSTEM: &[&str] = &[
    "Welcome to the voice messaging system.",
    "The mobile subscriber you are calling is unavailable.",
    "Please record your message after the tone.",
    "When you are finished, hang up, or press the pound key for more options.",
    "The person you have called cannot take your call.",
    "Your call is being forwarded to voicemail.",
];

/// One line of the script: what it is, who says it (index into the speakers of its kind).
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptLine {
    pub line: Line,
    pub kind: SpeakerKind,
    /// Speaker number among the speakers of `kind`.
    pub speaker: usize,
    pub request: TtsRequest,
}

/// Number of speakers of each kind.
pub fn speakers(kind: SpeakerKind) -> usize {
    VOICES.iter().filter(|s| s.kind == kind).count()
}

/// Every line of every speaker, in a fixed order. Speed and pitch move per line around the
/// speaker's own, by up to +-30 wpm and +-12 pitch.
pub fn lines() -> Vec<ScriptLine> {
    let mut out = Vec::new();
    let mut per_kind = std::collections::BTreeMap::new();
    for (i, s) in VOICES.iter().enumerate() {
        let speaker = {
            let n = per_kind.entry(s.kind).or_insert(0usize);
            *n += 1;
            *n - 1
        };
        let sets: &[(Line, &[&str])] = match s.kind {
            Human => &[
                (Line::Short, SHORT),
                (Line::Medium, MEDIUM),
                (Line::Ramble, RAMBLE),
                (Line::Again, AGAIN),
            ],
            Greeter => &[
                (Line::GreetShort, GREET_SHORT),
                (Line::GreetOpen, GREET_OPEN),
                (Line::GreetBody, GREET_BODY),
                (Line::GreetClose, GREET_CLOSE),
            ],
            Carrier => &[(Line::System, SYSTEM)],
        };
        for (line, texts) in sets {
            for (j, t) in texts.iter().enumerate() {
                let k = (i * 7 + j * 13) as i32;
                let dspeed = (k * 37) % 61 - 30;
                let dpitch = (k * 23) % 25 - 12;
                // Rambling people speed up; the carrier voices stay level.
                let extra = match line {
                    Line::Ramble => 20,
                    Line::Short => 10,
                    _ => 0,
                };
                let speed = (i32::from(s.speed) + dspeed + extra).clamp(100, 270) as u16;
                let pitch = (i32::from(s.pitch) + dpitch).clamp(5, 95) as u8;
                out.push(ScriptLine {
                    line: *line,
                    kind: s.kind,
                    speaker,
                    request: TtsRequest {
                        speaker: i,
                        kind: s.kind,
                        role: match line {
                            Line::Short => Role::Answer,
                            Line::Medium => Role::LongAnswer,
                            Line::Ramble => Role::Ramble,
                            Line::Again => Role::Again,
                            Line::GreetShort | Line::System => Role::GreetShort,
                            Line::GreetOpen => Role::GreetOpen,
                            Line::GreetBody | Line::GreetClose => Role::GreetBody,
                        },
                        voice: s.voice.to_string(),
                        speed,
                        pitch,
                        text: t.replace("{first}", s.first).replace("{last}", s.last),
                    },
                });
            }
        }
    }
    out
}

/// The espeak-ng requests of [`lines`], in the same order.
pub fn tts_requests() -> Vec<TtsRequest> {
    lines().into_iter().map(|l| l.request).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voices_differ_from_generator_one_and_ranges_are_wide() {
        let ours = lines();
        let theirs = crate::tools::corpus::script::tts_requests();
        for l in &ours {
            assert!(
                theirs.iter().all(|t| t.voice != l.request.voice),
                "{} is a generator 1 voice",
                l.request.voice
            );
            assert!(!l.request.text.contains('{'));
        }
        let speeds: Vec<u16> = ours.iter().map(|l| l.request.speed).collect();
        let pitches: Vec<u8> = ours.iter().map(|l| l.request.pitch).collect();
        assert!(*speeds.iter().min().unwrap() <= 120 && *speeds.iter().max().unwrap() >= 240);
        assert!(*pitches.iter().min().unwrap() <= 20 && *pitches.iter().max().unwrap() >= 85);
        assert_eq!(speakers(SpeakerKind::Human), 12);
        assert_eq!(ours, lines());
    }
}
