//! `trunx bench amd-serve`: the decision latency of the detector in-process and through
//! `trunx amd serve`'s three doors (trunx AMD stream WebSocket, AudioSocket, FreeSWITCH path).
//!
//! Every recording of a folder is streamed at its real pace (a 20 ms frame every 20 ms, all
//! calls at once) to a server started in-process on loopback ports. The latency of a call is
//! the wall time from sending the frame that completes its final decision to the client
//! knowing it (the decision message, or AudioSocket's hangup frame); in-process it is the
//! time `Amd::process` takes on that frame. Owns only the clients and the figures.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::amd::provider::external::{Encoding, audiosocket, is_final, l16_bytes, start_message};
use crate::amd::{Amd, AmdConfig, BeepModel};
use crate::audio::{FRAME_SAMPLES, frames_of};
use crate::runtime::amd::serve::{AmdServer, ServeOptions};
use crate::runtime::amd::{batch as amd_batch, files as amd_files};
use crate::runtime::clock;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Batch(#[from] amd_batch::BatchError),
    #[error(transparent)]
    Serve(#[from] crate::runtime::amd::serve::ServeError),
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, Serialize)]
pub struct Figures {
    pub calls: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct LatencyReport {
    pub recordings: usize,
    pub in_process: Figures,
    pub websocket: Figures,
    pub audiosocket: Figures,
    pub freeswitch: Figures,
}

fn figures(mut ms: Vec<f64>) -> Figures {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Figures {
        calls: ms.len(),
        p50_ms: round(at(0.5)),
        p95_ms: round(at(0.95)),
        max_ms: round(ms.last().copied().unwrap_or(0.0)),
        mean_ms: round(ms.iter().sum::<f64>() / ms.len().max(1) as f64),
    }
}

/// The frame (index) whose processing yields a decision made at `at_ms` of audio.
fn deciding_frame(at_ms: u64) -> usize {
    (at_ms.div_ceil(20) as usize).saturating_sub(1)
}

pub async fn run(
    dir: &Path,
    limit: usize,
    amd: AmdConfig,
    model: Option<BeepModel>,
) -> Result<LatencyReport, BenchError> {
    let files = amd_batch::recordings(dir)?;
    let mut calls = Vec::new();
    for f in files.iter().take(limit.max(1)) {
        match amd_files::read_call_audio(f) {
            Ok(pcm) => calls.push(pcm),
            Err(e) => return Err(BenchError::Other(format!("{}: {e}", f.display()))),
        }
    }
    let in_process = calls
        .iter()
        .filter_map(|pcm| in_process_latency(pcm, &amd, model.clone()))
        .collect();
    let server = AmdServer::start(ServeOptions {
        ws: "127.0.0.1:0".parse().expect("address"),
        audiosocket: "127.0.0.1:0".parse().expect("address"),
        max_sessions: calls.len() + 8,
        amd,
        model,
    })
    .await?;
    let (ws, aus) = (server.ws_addr(), server.audiosocket_addr());
    let mut results = Vec::new();
    for door in 0..3 {
        let tasks: Vec<_> = calls
            .iter()
            .enumerate()
            .map(|(i, pcm)| {
                let pcm = pcm.clone();
                tokio::spawn(async move {
                    match door {
                        0 => ws_latency(format!("ws://{ws}/amd/v1/stream"), &pcm, i, false).await,
                        1 => audiosocket_latency(aus, ws, &pcm, i).await,
                        _ => {
                            ws_latency(format!("ws://{ws}/freeswitch/bench-{i}"), &pcm, i, true)
                                .await
                        }
                    }
                })
            })
            .collect();
        let mut ms = Vec::new();
        for t in tasks {
            if let Ok(Some(x)) = t.await {
                ms.push(x);
            }
        }
        results.push(ms);
    }
    server.shutdown().await;
    let mut it = results.into_iter();
    Ok(LatencyReport {
        recordings: calls.len(),
        in_process: figures(in_process),
        websocket: figures(it.next().unwrap_or_default()),
        audiosocket: figures(it.next().unwrap_or_default()),
        freeswitch: figures(it.next().unwrap_or_default()),
    })
}

fn in_process_latency(pcm: &[i16], config: &AmdConfig, model: Option<BeepModel>) -> Option<f64> {
    let mut amd = Amd::new(config.clone(), model);
    for frame in frames_of(pcm) {
        let t = clock::now();
        let e = amd.process(&frame);
        let took = clock::now().duration_since(t);
        if let Some(e) = e
            && is_final(&e.kind)
        {
            return Some(took.as_secs_f64() * 1000.0);
        }
    }
    None
}

/// Sends a call's frames every 20 ms, remembering when each left.
async fn paced<F, Fut>(pcm: &[i16], sent: &std::sync::Mutex<Vec<Instant>>, mut send: F)
where
    F: FnMut(Vec<i16>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for chunk in pcm.chunks(FRAME_SAMPLES) {
        tick.tick().await;
        if let Ok(mut s) = sent.lock() {
            s.push(clock::now());
        }
        if !send(chunk.to_vec()).await {
            return;
        }
    }
    std::future::pending::<()>().await;
}

async fn ws_latency(url: String, pcm: &[i16], i: usize, freeswitch: bool) -> Option<f64> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .ok()?;
    let (sink, mut stream) = ws.split();
    let sink = tokio::sync::Mutex::new(sink);
    if !freeswitch {
        let start = start_message(&format!("bench-{i}"), Encoding::L16, 8000);
        sink.lock()
            .await
            .send(Message::Text(start.into()))
            .await
            .ok()?;
    }
    let sent = std::sync::Mutex::new(Vec::new());
    let send = |samples: Vec<i16>| {
        let sink = &sink;
        async move {
            let mut bytes = Vec::new();
            l16_bytes(&samples, &mut bytes);
            sink.lock()
                .await
                .send(Message::Binary(bytes.into()))
                .await
                .is_ok()
        }
    };
    let receive = async {
        while let Some(Ok(m)) = stream.next().await {
            let got = clock::now();
            if let Message::Text(t) = m {
                let v: serde_json::Value = serde_json::from_str(&t).ok()?;
                if v["final"] == true {
                    let k = deciding_frame(v["at_ms"].as_u64()?);
                    let at = *sent.lock().ok()?.get(k)?;
                    return Some(got.duration_since(at).as_secs_f64() * 1000.0);
                }
            }
        }
        None
    };
    tokio::select! {
        r = receive => r,
        _ = paced(pcm, &sent, send) => None,
    }
}

async fn audiosocket_latency(
    addr: std::net::SocketAddr,
    http: std::net::SocketAddr,
    pcm: &[i16],
    i: usize,
) -> Option<f64> {
    let uuid = format!("00000000-0000-4000-8000-{i:012x}");
    let stream = TcpStream::connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (mut rx, tx) = stream.into_split();
    let tx = tokio::sync::Mutex::new(tx);
    let mut out = Vec::new();
    audiosocket::encode(
        audiosocket::KIND_UUID,
        &audiosocket::parse_uuid(&uuid)?,
        &mut out,
    );
    tx.lock().await.write_all(&out).await.ok()?;
    let sent = std::sync::Mutex::new(Vec::new());
    let send = |samples: Vec<i16>| {
        let tx = &tx;
        async move {
            let mut out = Vec::new();
            audiosocket::encode_audio(&samples, &mut out);
            tx.lock().await.write_all(&out).await.is_ok()
        }
    };
    let receive = async {
        let mut buf = [0u8; 3];
        rx.read_exact(&mut buf).await.ok()?;
        Some(clock::now())
    };
    let got = tokio::select! {
        r = receive => r?,
        _ = paced(pcm, &sent, send) => return None,
    };
    // The decision's audio time, as a dialplan would read it.
    let mut s = TcpStream::connect(http).await.ok()?;
    s.write_all(format!("GET /amd/v1/result/{uuid} HTTP/1.1\r\nHost: b\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).await.ok()?;
    let v: serde_json::Value = serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()?;
    let k = deciding_frame(v["at_ms"].as_u64()?);
    let at = *sent.lock().ok()?.get(k)?;
    Some(got.duration_since(at).as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deciding_frame_holds_the_decision_time() {
        assert_eq!(deciding_frame(2480), 123);
        assert_eq!(deciding_frame(2490), 124);
        assert_eq!(deciding_frame(0), 0);
        let f = figures(vec![3.0, 1.0, 2.0]);
        assert_eq!((f.calls, f.p50_ms, f.max_ms, f.mean_ms), (3, 2.0, 3.0, 2.0));
    }
}
