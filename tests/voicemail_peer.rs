//! The voicemail drop against a real far end: baresip (Debian baresip-core) answers like a
//! voicemail box, playing a recorded greeting with its beep, and records what it hears
//! (`sndfile` module). The prepared message is found in that recording by cross-correlation:
//! it must start after the labelled beep end, within 150 ms of it, and be all there.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustfft::FftPlanner;
use rustfft::num_complex::Complex64;
use trunx::amd::AmdConfig;
use trunx::amd::bench::parse_labels;
use trunx::audio::prompt::{Prompt, PromptOptions};
use trunx::audio::wav::{read_telephone_wav, write_telephone_wav};
use trunx::runtime::amd_files::load_beep_model;
use trunx::runtime::dial::{DialOptions, dial};

struct Baresip(Child);

impl Drop for Baresip {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child we started.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

/// Lag (samples) and normalised correlation of `needle` inside `hay` (zero-padded at the end,
/// so a message cut short by the hang-up still matches).
fn find(hay: &[f64], needle: &[f64]) -> (usize, f64) {
    let n = (hay.len() + 2 * needle.len()).next_power_of_two();
    let mut planner = FftPlanner::<f64>::new();
    let (fwd, inv) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
    let mut a: Vec<Complex64> = (0..n)
        .map(|i| Complex64::new(*hay.get(i).unwrap_or(&0.0), 0.0))
        .collect();
    let mut b: Vec<Complex64> = (0..n)
        .map(|i| Complex64::new(*needle.get(i).unwrap_or(&0.0), 0.0))
        .collect();
    fwd.process(&mut a);
    fwd.process(&mut b);
    let mut c: Vec<Complex64> = a.iter().zip(&b).map(|(x, y)| x * y.conj()).collect();
    inv.process(&mut c);
    let lag = (0..hay.len())
        .max_by(|&i, &j| c[i].re.total_cmp(&c[j].re))
        .unwrap();
    let seg: Vec<f64> = (0..needle.len())
        .map(|i| *hay.get(lag + i).unwrap_or(&0.0))
        .collect();
    let dot: f64 = seg.iter().zip(needle).map(|(x, y)| x * y).sum();
    let e1: f64 = seg.iter().map(|x| x * x).sum();
    let e2: f64 = needle.iter().map(|x| x * x).sum();
    (lag, dot / (e1 * e2).sqrt())
}

#[tokio::test]
async fn the_message_starts_right_after_the_beep_and_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wav = "0087-machine_beep_single.wav";
    let label = parse_labels(
        &std::fs::read_to_string(root.join("audio-fixtures/calls/labels.csv")).unwrap(),
    )
    .unwrap()
    .into_iter()
    .find(|l| l.file == wav)
    .unwrap();
    let (_, beep_end_ms) = label.beep_ms.unwrap();
    // The box's greeting, with room after it for our message.
    let mut greeting = read_telephone_wav(&root.join("audio-fixtures/calls").join(wav)).unwrap();
    greeting.extend(std::iter::repeat_n(0i16, 8000 * 16));
    write_telephone_wav(&d.join("greeting.wav"), &greeting).unwrap();
    std::fs::write(
        d.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:16170\nnet_interface 127.0.0.1\n\
             audio_source aufile,{}\naudio_player alsa,null\naudio_alert alsa,null\n\
             rtp_ports 18150-18190\nsnd_path {}\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule aufile.so\nmodule alsa.so\nmodule sndfile.so\n\
             module_app account.so\nmodule_app menu.so\n",
            d.join("greeting.wav").display(),
            d.display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("accounts"),
        "<sip:vm@127.0.0.1:16170>;regint=0;answermode=auto;audio_codecs=PCMU,PCMA\n",
    )
    .unwrap();
    let baresip_path = ["/usr/bin/baresip", "/usr/local/bin/baresip"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or_else(|| {
            panic!("baresip is not installed: run `make deps` (apt-get install -y baresip-core)")
        });
    let baresip = Baresip(
        Command::new(baresip_path)
            .args(["-f", &d.display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("baresip starts"),
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let prompt = Arc::new(
        Prompt::load(
            &root.join("audio-fixtures/prompts/voicemail-10s.mp3"),
            &PromptOptions::default(),
        )
        .unwrap(),
    );
    let options = DialOptions {
        target: "sip:vm@127.0.0.1:16170".into(),
        from: "+15550001111".into(),
        trunk: "sip:127.0.0.1:16170".into(),
        username: None,
        password: None,
        ring_timeout: Duration::from_secs(10),
        sip_addr: "127.0.0.1:16162".parse().unwrap(),
        rtp_ports: 18100..=18120,
        send_pai: false,
        voicemail: Some(prompt.clone()),
    };
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let report = tokio::time::timeout(
        Duration::from_secs(40),
        dial(&options, &AmdConfig::default(), Some(model)),
    )
    .await
    .expect("the call finishes")
    .unwrap();
    assert_eq!(report.amd, Some("machine_end_beep"), "{report:?}");
    assert_eq!(report.message, Some("voicemail"), "{report:?}");
    assert_eq!(report.played_ms, Some(prompt.duration_ms()), "{report:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(baresip);

    let recording = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .ends_with("-dec.wav")
        })
        .expect("baresip recorded what it heard");
    let heard: Vec<f64> = read_telephone_wav(&recording)
        .unwrap()
        .iter()
        .map(|s| *s as f64)
        .collect();
    let sent: Vec<f64> = prompt.pcm.iter().map(|s| *s as f64).collect();
    let (lag, corr) = find(&heard, &sent);
    let start_ms = lag as u64 / 8;
    assert!(
        start_ms >= beep_end_ms,
        "message starts at {start_ms} ms, before the beep ends at {beep_end_ms} ms"
    );
    assert!(
        start_ms <= beep_end_ms + 150,
        "message starts {} ms after the beep",
        start_ms - beep_end_ms
    );
    assert!(
        corr >= 0.9,
        "the message is not all there: correlation {corr:.3}"
    );
    eprintln!(
        "message starts {} ms after the beep end, correlation {corr:.3}",
        start_ms - beep_end_ms
    );
}
