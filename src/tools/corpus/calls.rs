//! How each category of call is put together from the prepared ingredients. Pure: a seeded
//! RNG in, a [`Call`] out.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::bank::{Corpus, SPEECH_DBFS, join, pick, pick_fitting, secs};
use super::channel::{self, ChannelParams, NoiseColour, db_to_lin, scale_to_dbfs};
use super::labels::Label;
use super::tones::{self, BeepShape, MS};
use super::{Call, Category, file_name, mix_seed};

/// A composed call before the channel.
struct Scene {
    mix: Vec<f32>,
    beep: Option<(usize, usize)>,
    /// Level of the beep as it should come out of the channel, dBFS.
    beep_dbfs: Option<f32>,
    /// End of the person's first utterance (sample), for the `utt_end=` label.
    utt_end: Option<usize>,
    notes: Vec<String>,
}

impl Scene {
    fn new() -> Scene {
        Scene {
            mix: Vec::new(),
            beep: None,
            beep_dbfs: None,
            utt_end: None,
            notes: Vec::new(),
        }
    }

    /// Mixes `clip` at sample `at` with linear gain `gain`, growing the buffer as needed.
    fn put(&mut self, at: usize, clip: &[f32], gain: f32) {
        if self.mix.len() < at + clip.len() {
            self.mix.resize(at + clip.len(), 0.0);
        }
        for (d, s) in self.mix[at..].iter_mut().zip(clip) {
            *d += s * gain;
        }
    }

    fn pad_to(&mut self, len: usize) {
        if self.mix.len() < len {
            self.mix.resize(len, 0.0);
        }
    }

    fn note(&mut self, key: &str, value: impl std::fmt::Display) {
        self.notes.push(format!("{key}={value}"));
    }
}

/// Rounds a sample position up to a whole millisecond.
fn align_ms(at: usize) -> usize {
    at.div_ceil(MS) * MS
}

impl Corpus {
    /// Generates call `index` of a corpus with `seed`. The call depends only on the prepared
    /// ingredients, the seed, the index and the category.
    pub fn call(&self, seed: u64, index: usize, category: Category) -> Call {
        let mut rng = StdRng::seed_from_u64(mix_seed(seed, index as u64));
        let mut scene = Scene::new();
        scene.note("cat", category.name());
        // Every category fixes its own level offsets relative to the -20 dBFS speech; the
        // channel gain then moves the whole call.
        let mut params = ChannelParams::random(&mut rng);
        // Keep the line noise at least 25 dB under nominal speech (a usable phone line).
        params.noise_dbfs = params
            .noise_dbfs
            .min(SPEECH_DBFS + params.gain_db - 25.0)
            .max(-65.0);
        match category {
            Category::HumanShort => self.human_short(&mut rng, &mut scene),
            Category::HumanLong => self.human_long(&mut rng, &mut scene),
            Category::HumanHelloHello => self.human_hello_hello(&mut rng, &mut scene),
            Category::HumanNoise => self.human_background(&mut rng, &mut scene, false),
            Category::HumanTv => self.human_background(&mut rng, &mut scene, true),
            Category::HumanSilent => self.human_silent(&mut rng, &mut scene),
            Category::HumanRambling => self.human_rambling(&mut rng, &mut scene),
            Category::MachineShort => {
                self.machine(&mut rng, &mut scene, &params, Some(false), None)
            }
            Category::MachineLong => self.machine(&mut rng, &mut scene, &params, Some(true), None),
            Category::MachineMusic => self.machine_music(&mut rng, &mut scene, &params),
            Category::MachineLate => self.machine_late(&mut rng, &mut scene, &params),
            Category::MachineBeepSingle => {
                self.machine(&mut rng, &mut scene, &params, None, Some(BeepShape::Single))
            }
            Category::MachineBeepDual => {
                self.machine(&mut rng, &mut scene, &params, None, Some(BeepShape::Dual))
            }
            Category::MachineBeepSeq => {
                self.machine(&mut rng, &mut scene, &params, None, Some(BeepShape::Seq))
            }
            Category::MachineBeepTriple => {
                self.machine(&mut rng, &mut scene, &params, None, Some(BeepShape::Triple))
            }
            Category::MachineNobeep => self.machine_nobeep(&mut rng, &mut scene),
            Category::MachineDecoy => self.machine_decoy(&mut rng, &mut scene, &params),
            Category::Sit => self.sit(&mut rng, &mut scene),
            Category::Fax => self.fax(&mut rng, &mut scene),
        }
        // The far end's own room/line floor, before the channel.
        let floor_db = rng.random_range(-72.0..-58.0);
        let floor = channel::noise(&mut rng, NoiseColour::Pink, scene.mix.len(), floor_db);
        scene.put(0, &floor, 1.0);

        let protected: Vec<(usize, usize)> = scene.beep.into_iter().collect();
        let sent = channel::transmit(&scene.mix, &params, &protected, &mut rng);
        let placeholder = scene.notes.iter().position(|n| n == "beep_dbfs=");
        if let (Some(pos), Some(asked)) = (placeholder, scene.beep_dbfs) {
            // The clipping guard may have lowered the gain: report the level as sent.
            scene.notes[pos] = format!("beep_dbfs={:.0}", asked + sent.gain_db - params.gain_db);
        }
        scene.note(
            "law",
            match params.law {
                crate::audio::g711::Law::Ulaw => "ulaw",
                crate::audio::g711::Law::Alaw => "alaw",
            },
        );
        scene.note("gain", format!("{:.1}", sent.gain_db));
        scene.note(
            "line",
            format!("{}{:.0}", params.noise.name(), params.noise_dbfs),
        );
        scene.note("lost", sent.lost_frames);
        if let Some(end) = scene.utt_end {
            scene.note("utt_end", end.div_ceil(MS));
        }
        let label = Label {
            file: file_name(index, category),
            truth: category.truth(),
            beep_ms: scene
                .beep
                .map(|(s, e)| ((s / MS) as u64, (e.div_ceil(MS)) as u64)),
            notes: scene.notes.join(";").replace([',', '\n'], " "),
        };
        Call {
            index,
            category,
            pcm: sent.pcm,
            label,
        }
    }

    fn human_short(&self, rng: &mut StdRng, s: &mut Scene) {
        let at = secs(rng, 0.2, 1.2);
        let (clip, tag) = self.short_answer(rng);
        s.put(at, &clip, Self::talk_gain(rng));
        s.utt_end = Some(at + clip.len());
        s.note("voice", tag);
        s.note("speech_ms", clip.len() / MS);
        let total = secs(rng, 5.0, 7.0).max(s.mix.len() + 8000);
        s.pad_to(total);
    }

    fn human_long(&self, rng: &mut StdRng, s: &mut Scene) {
        let at = secs(rng, 0.2, 1.2);
        let v = self.human_voice(rng);
        let clip = pick_fitting(rng, &v.long, 1.0, 1.8);
        s.put(at, clip, Self::talk_gain(rng));
        s.utt_end = Some(at + clip.len());
        s.note("voice", &v.tag);
        s.note("speech_ms", clip.len() / MS);
        let total = secs(rng, 5.0, 8.0).max(s.mix.len() + secs(rng, 2.5, 4.0));
        s.pad_to(total);
    }

    fn human_hello_hello(&self, rng: &mut StdRng, s: &mut Scene) {
        let at = secs(rng, 0.2, 1.2);
        let gain = Self::talk_gain(rng);
        let (first, second, tag) = if rng.random_bool(0.25) {
            let h = self.real_hello.clone();
            (h.clone(), h, "allison".to_string())
        } else {
            let v = self.human_voice(rng);
            let a = pick_fitting(rng, &v.answers[..1], 0.3, 1.0).clone();
            (a, pick(rng, &v.again).clone(), v.tag.clone())
        };
        s.put(at, &first, gain);
        s.utt_end = Some(at + first.len());
        let second_at = s.mix.len() + secs(rng, 1.5, 2.5);
        s.put(
            second_at,
            &second,
            gain * db_to_lin(rng.random_range(0.0..3.0)),
        );
        s.note("voice", tag);
        s.note("speech_ms", (s.mix.len() - at) / MS);
        let tail = secs(rng, 1.5, 3.0);
        s.pad_to(s.mix.len() + tail);
    }

    /// `human_noise` (street/car noise at 10-20 dB SNR) or `human_tv` (music, babble or both
    /// at 15-25 dB under the voice).
    fn human_background(&self, rng: &mut StdRng, s: &mut Scene, tv: bool) {
        let at = secs(rng, 0.2, 1.2);
        let gain = Self::talk_gain(rng);
        let (clip, tag) = if rng.random_bool(0.7) {
            self.short_answer(rng)
        } else {
            let v = self.human_voice(rng);
            (pick_fitting(rng, &v.long, 1.0, 1.8).clone(), v.tag.clone())
        };
        s.put(at, &clip, gain);
        s.utt_end = Some(at + clip.len());
        s.note("voice", tag);
        s.note("speech_ms", clip.len() / MS);
        let total = secs(rng, 5.0, 7.0).max(s.mix.len() + 8000);
        s.pad_to(total);
        let speech_db = SPEECH_DBFS + 20.0 * gain.log10();
        let mut bg = if tv {
            let rel = rng.random_range(-25.0..-15.0);
            let (mut bg, kind) = match rng.random_range(0..3) {
                0 => (self.music_excerpt(rng, total), "music"),
                1 => (self.babble(rng, total), "babble"),
                _ => {
                    let mut m = self.music_excerpt(rng, total);
                    scale_to_dbfs(&mut m, -6.0);
                    let b = self.babble(rng, total);
                    m.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    (m, "tv")
                }
            };
            scale_to_dbfs(&mut bg, speech_db + rel);
            s.note("bg", format!("{kind}{rel:.0}"));
            bg
        } else {
            let snr = rng.random_range(10.0..20.0);
            let (bg, kind) = if rng.random_bool(0.5) {
                (Self::street_noise(rng, total), "street")
            } else {
                (Self::car_noise(rng, total), "car")
            };
            s.note("bg", kind);
            s.note("snr", format!("{snr:.0}"));
            // SNR in the telephone band: most car rumble is below 300 Hz.
            let mut bg = bg;
            channel::band_pass(&mut bg);
            scale_to_dbfs(&mut bg, speech_db - snr);
            bg
        };
        bg.truncate(total);
        s.put(0, &bg, 1.0);
    }

    fn human_silent(&self, rng: &mut StdRng, s: &mut Scene) {
        let at = secs(rng, 2.0, 4.0);
        let (clip, tag) = self.short_answer(rng);
        let quiet = rng.random_range(-14.0..-8.0);
        s.put(at, &clip, db_to_lin(quiet));
        s.utt_end = Some(at + clip.len());
        s.note("voice", tag);
        s.note("speech_start_ms", at / MS);
        s.note("speech_ms", clip.len() / MS);
        s.note("quiet", format!("{quiet:.0}"));
        let tail = secs(rng, 2.0, 3.0);
        s.pad_to(s.mix.len() + tail);
    }

    fn human_rambling(&self, rng: &mut StdRng, s: &mut Scene) {
        let v = self.human_voice(rng);
        let gain = Self::talk_gain(rng);
        let n = rng.random_range(2..=3);
        let mut used: Vec<usize> = Vec::with_capacity(n);
        while used.len() < n {
            let k = rng.random_range(0..v.rambles.len());
            if !used.contains(&k) {
                used.push(k);
            }
        }
        let start = secs(rng, 0.2, 1.0);
        let mut at = start;
        for (i, k) in used.iter().enumerate() {
            if i > 0 {
                at = s.mix.len() + secs(rng, 0.3, 0.7);
                // A pause of 500 ms or more ends the first utterance.
                if s.utt_end.is_none() && at - s.mix.len() >= 500 * MS {
                    s.utt_end = Some(s.mix.len());
                }
            }
            s.put(at, &v.rambles[*k], gain);
        }
        s.utt_end = s.utt_end.or(Some(s.mix.len()));
        s.note("voice", &v.tag);
        s.note("phrases", n);
        s.note("speech_ms", (s.mix.len() - start) / MS);
        let tail = secs(rng, 1.5, 3.0);
        s.pad_to(s.mix.len() + tail);
    }

    /// A beep of a given shape, or of a random one (mostly single, sometimes the recorded
    /// Asterisk beep), at -35..-10 dBFS as sent (compensating the channel gain).
    fn beep(
        &self,
        rng: &mut StdRng,
        params: &ChannelParams,
        shape: Option<BeepShape>,
    ) -> tones::Beep {
        let level = rng.random_range(-35.0..-10.0);
        let pre = level - params.gain_db;
        match shape {
            Some(shape) => tones::beep(rng, shape, pre),
            None if rng.random_bool(0.08) && !self.recorded_beep.is_empty() => {
                tones::recorded_beep(&self.recorded_beep, pre)
            }
            None => {
                let shape = BeepShape::random(rng);
                tones::beep(rng, shape, pre)
            }
        }
        .with_level(level)
    }

    /// Places a beep `gap` after `after`, notes it and returns where it ends.
    fn place_beep(&self, s: &mut Scene, beep: &tones::Beep, after: usize, gap: usize) -> usize {
        let at = align_ms(after + gap);
        s.put(at, &beep.pcm, 1.0);
        let (start, end) = (at + beep.tone_start, at + beep.tone_end);
        s.beep = Some((start, end));
        s.note("beep", &beep.description);
        s.note("beep_ms", (end - start) / MS);
        s.beep_dbfs = Some(beep.level_dbfs);
        s.note("beep_dbfs", ""); // filled in once the channel gain is known
        s.note("beep_gap_ms", gap / MS);
        end
    }

    /// Greeting (short, long or either) then a beep (given shape or random), then 1.5-3 s.
    fn machine(
        &self,
        rng: &mut StdRng,
        s: &mut Scene,
        params: &ChannelParams,
        long: Option<bool>,
        shape: Option<BeepShape>,
    ) {
        let at = secs(rng, 0.1, 1.0);
        let long = long.unwrap_or_else(|| rng.random_bool(0.5));
        let (g, tag) = self.greeting(rng, long);
        s.put(at, &g, Self::talk_gain(rng));
        s.note("greeting", tag);
        s.note("greeting_ms", g.len() / MS);
        self.finish_with_beep(rng, s, params, at + g.len(), shape);
    }

    fn finish_with_beep(
        &self,
        rng: &mut StdRng,
        s: &mut Scene,
        params: &ChannelParams,
        greeting_end: usize,
        shape: Option<BeepShape>,
    ) {
        let beep = self.beep(rng, params, shape);
        let gap = secs(rng, 0.1, 1.2);
        let end = self.place_beep(s, &beep, greeting_end, gap);
        let tail = secs(rng, 1.5, 3.0);
        s.pad_to(end + tail);
    }

    fn machine_music(&self, rng: &mut StdRng, s: &mut Scene, params: &ChannelParams) {
        let at = secs(rng, 0.3, 1.5);
        let long = rng.random_bool(0.5);
        let (g, tag) = self.greeting(rng, long);
        let gain = Self::talk_gain(rng);
        s.put(at, &g, gain);
        let greeting_end = at + g.len();
        let beep = self.beep(rng, params, None);
        let gap = secs(rng, 0.1, 1.2);
        // The music stops shortly after the voice and always before the beep.
        let music_end = greeting_end + (gap / 2).min(secs(rng, 0.1, 0.3));
        let mut music = self.music_excerpt(rng, music_end);
        let rel = rng.random_range(-16.0..-8.0);
        scale_to_dbfs(&mut music, SPEECH_DBFS + 20.0 * gain.log10() + rel);
        let fade = (150 * MS).min(music.len());
        let n = music.len();
        for (i, m) in music[n - fade..].iter_mut().enumerate() {
            *m *= 1.0 - i as f32 / fade as f32;
        }
        s.put(0, &music, 1.0);
        s.note("greeting", tag);
        s.note("greeting_ms", g.len() / MS);
        s.note("music", format!("{rel:.0}"));
        let end = self.place_beep(s, &beep, greeting_end, gap);
        let tail = secs(rng, 1.5, 3.0);
        s.pad_to(end + tail);
    }

    fn machine_late(&self, rng: &mut StdRng, s: &mut Scene, params: &ChannelParams) {
        let at = secs(rng, 2.5, 4.0);
        let long = rng.random_bool(0.5);
        let (g, tag) = self.greeting(rng, long);
        s.put(at, &g, Self::talk_gain(rng));
        s.note("greeting", tag);
        s.note("greeting_ms", g.len() / MS);
        s.note("lead_ms", at / MS);
        self.finish_with_beep(rng, s, params, at + g.len(), None);
    }

    fn machine_nobeep(&self, rng: &mut StdRng, s: &mut Scene) {
        let at = secs(rng, 0.1, 1.0);
        let long = rng.random_bool(0.5);
        let (g, tag) = self.greeting(rng, long);
        s.put(at, &g, Self::talk_gain(rng));
        s.note("greeting", tag);
        s.note("greeting_ms", g.len() / MS);
        let tail = secs(rng, 3.0, 6.0);
        s.pad_to(at + g.len() + tail);
    }

    /// Greeting part one, a decoy inside or right after it, part two, then the real beep.
    fn machine_decoy(&self, rng: &mut StdRng, s: &mut Scene, params: &ChannelParams) {
        let at = secs(rng, 0.1, 1.0);
        let gain = Self::talk_gain(rng);
        let (part1, part2, tag) = if rng.random_bool(0.2) {
            let digits: Vec<String> = (0..4)
                .map(|_| format!("digits/{}", rng.random_range(0..10)))
                .collect();
            let mut parts: Vec<&[f32]> = vec![self.prompt("vm-theperson")];
            parts.extend(digits.iter().map(|d| self.prompt(d)));
            parts.push(self.prompt("vm-isunavail"));
            let gaps: Vec<usize> = (0..parts.len()).map(|_| secs(rng, 0.05, 0.2)).collect();
            (
                join(&parts, &gaps),
                self.prompt("vm-intro").to_vec(),
                "asterisk".to_string(),
            )
        } else {
            let g = pick(rng, &self.greeters);
            let first = if rng.random_bool(0.5) {
                pick(rng, &g.short)
            } else {
                pick(rng, &g.open)
            };
            (first.clone(), pick(rng, &g.body).clone(), g.tag.clone())
        };
        s.put(at, &part1, gain);
        let part1_end = at + part1.len();
        let speech_db = SPEECH_DBFS + 20.0 * gain.log10();
        let (decoy, kind) = match rng.random_range(0..4) {
            // A chime: the recorded Asterisk two-tone or a synthesised doorbell.
            0 if rng.random_bool(0.5) => {
                let name = if rng.random_bool(0.5) {
                    "ascending-2tone"
                } else {
                    "descending-2tone"
                };
                let mut c = self.prompt(name).to_vec();
                scale_to_dbfs(&mut c, speech_db + rng.random_range(-6.0..0.0));
                (c, format!("chime:{name}"))
            }
            0 => {
                let level = speech_db + rng.random_range(-6.0..0.0);
                (tones::doorbell(rng, level), "chime:doorbell".to_string())
            }
            1 => {
                let ms = rng.random_range(70..=200);
                let level = speech_db + rng.random_range(-8.0..-2.0);
                let (d, key) = tones::dtmf(rng, ms, level);
                (d, format!("dtmf:{key}"))
            }
            2 => {
                let ms = rng.random_range(400..=1200);
                let level = speech_db + rng.random_range(-3.0..1.0);
                let (v, vowel) = tones::sung_vowel(rng, ms, level);
                (v, format!("vowel:{vowel}"))
            }
            _ => {
                let len = secs(rng, 0.6, 1.5);
                let mut m = self.music_excerpt(rng, len);
                scale_to_dbfs(&mut m, speech_db + rng.random_range(-8.0..-2.0));
                let n = m.len();
                let (fin, fout) = ((30 * MS).min(n / 2), (150 * MS).min(n / 2));
                for (i, v) in m[..fin].iter_mut().enumerate() {
                    *v *= i as f32 / fin as f32;
                }
                for (i, v) in m[n - fout..].iter_mut().rev().enumerate() {
                    *v *= i as f32 / fout as f32;
                }
                (m, "sting".to_string())
            }
        };
        // Inside the greeting (over the end of part one) or right after it.
        let inside = rng.random_bool(0.3) && part1.len() > decoy.len() * 2;
        let decoy_at = if inside {
            part1_end - decoy.len() - secs(rng, 0.0, 0.3).min(part1.len() - decoy.len() * 2)
        } else {
            part1_end + secs(rng, 0.05, 0.4)
        };
        s.put(decoy_at, &decoy, 1.0);
        let part2_at = s.mix.len().max(part1_end) + secs(rng, 0.2, 0.6);
        s.put(part2_at, &part2, gain);
        s.note("greeting", tag);
        s.note("greeting_ms", (part2_at + part2.len() - at) / MS);
        s.note("decoy", kind);
        s.note("decoy_ms", decoy_at / MS);
        self.finish_with_beep(rng, s, params, part2_at + part2.len(), None);
    }

    fn sit(&self, rng: &mut StdRng, s: &mut Scene) {
        let at = secs(rng, 0.0, 0.3);
        let level = rng.random_range(-24.0..-14.0);
        let (tone, code) = tones::sit(rng, level);
        s.put(at, &tone, 1.0);
        s.note("sit", code);
        let messages: [&[&str]; 5] = [
            &[
                "im-sorry",
                "cannot-complete-as-dialed",
                "check-number-dial-again",
            ],
            &["all-circuits-busy-now", "please-try-call-later"],
            &["ss-noservice"],
            &["cannot-complete-as-dialed", "please-try-call-later"],
            &["im-sorry", "all-circuits-busy-now", "please-try-call-later"],
        ];
        let message = messages[rng.random_range(0..messages.len())];
        let parts: Vec<&[f32]> = message.iter().map(|m| self.prompt(m)).collect();
        let gaps: Vec<usize> = (0..parts.len()).map(|_| secs(rng, 0.15, 0.5)).collect();
        let announcement = join(&parts, &gaps);
        let mut pos = at + tone.len() + secs(rng, 0.05, 0.4);
        let gain = Self::talk_gain(rng);
        s.put(pos, &announcement, gain);
        if rng.random_bool(0.3) {
            pos += announcement.len() + secs(rng, 0.8, 1.5);
            s.put(pos, &announcement, gain);
        }
        s.note("announcement", message.join("+"));
        let tail = secs(rng, 1.0, 2.0);
        s.pad_to(s.mix.len() + tail);
    }

    fn fax(&self, rng: &mut StdRng, s: &mut Scene) {
        let level = rng.random_range(-20.0..-10.0);
        if rng.random_bool(0.5) {
            let at = secs(rng, 0.2, 1.5);
            let cycles = rng.random_range(2..=3);
            let cng = tones::fax_cng(rng, cycles, level);
            s.put(at, &cng, 1.0);
            s.note("fax", format!("cng*{cycles}"));
            s.pad_to(at + cycles * 3500 * MS);
        } else {
            let at = secs(rng, 1.8, 2.5);
            let ms = rng.random_range(2600..=4000);
            let reversals = rng.random_bool(0.3);
            let preamble = rng.random_range(800..=1500);
            let ced = tones::fax_ced(rng, ms, reversals, preamble, level);
            s.put(at, &ced, 1.0);
            s.note(
                "fax",
                format!("ced{ms}{}", if reversals { "+rev" } else { "" }),
            );
            s.note("ced_start_ms", at / MS);
            let tail = secs(rng, 1.0, 3.0);
            s.pad_to(s.mix.len() + tail);
        }
    }
}
