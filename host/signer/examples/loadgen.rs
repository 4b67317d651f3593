//! Load generator for the vote signer: many validators, each voting on its own fork of
//! consecutive slots, over JSON-RPC, against a signer with durability on.
//!
//! ```text
//! cargo run --release -p keyward-signer --example loadgen -- [--url URL] [--validators N]
//!     [--seconds S] [--rate VOTES_PER_SECOND]
//! ```
//!
//! Without `--url` it starts a signer in-process on a fresh data directory under the system
//! temp dir (redb, fsync on every commit). `--rate 0` (the default) sends as fast as the signer
//! answers, one request in flight per validator; a positive rate spreads requests evenly and
//! measures latency from each request's scheduled time, so a stalled signer cannot hide its
//! queueing (no coordinated omission).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward_crypto::{SecretBytes, SolanaKeypair, SolanaPubkey};
use keyward_signer::client::Client;
use keyward_signer::config::Config;
use keyward_signer::service::Service;
use keyward_signer::votes::tower_sync_message;
use keyward_vote::{LockoutPolicy, Tower};
use rand_core::OsRng;

struct Args {
    url: Option<String>,
    validators: usize,
    seconds: u64,
    rate: f64,
}

fn args() -> Args {
    let mut a = Args {
        url: None,
        validators: 64,
        seconds: 10,
        rate: 0.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("flag needs a value");
        match flag.as_str() {
            "--url" => a.url = Some(value()),
            "--validators" => a.validators = value().parse().unwrap(),
            "--seconds" => a.seconds = value().parse().unwrap(),
            "--rate" => a.rate = value().parse().unwrap(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

#[tokio::main]
async fn main() {
    let a = args();
    let mut _service = None;
    let url = match &a.url {
        Some(url) => url.clone(),
        None => {
            let dir = std::env::temp_dir().join(format!("keyward-loadgen-{}", std::process::id()));
            let config = Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                data_dir: dir,
                ..Config::default()
            };
            let service = Service::start(&config).await.unwrap();
            let url = format!("http://{}", service.running.addr);
            _service = Some(service);
            url
        }
    };
    let mut clients = Vec::new();
    for _ in 0..a.validators {
        let identity = SolanaKeypair::from_seed(&SecretBytes::random(&mut OsRng));
        let vote_account = SolanaKeypair::generate(&mut OsRng).pubkey();
        let client = Client::connect(&url, identity).await.unwrap();
        let vote_key: SolanaPubkey = client
            .register(vote_account)
            .await
            .unwrap()
            .vote_pubkey
            .parse()
            .unwrap();
        clients.push(Arc::new((client, vote_account, vote_key)));
    }
    let period = (a.rate > 0.0).then(|| Duration::from_secs_f64(a.validators as f64 / a.rate));
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let (client, vote_account, vote_key) = &*c;
            let policy = LockoutPolicy::SOLANA;
            let mut tower = Tower::new();
            let mut latencies = Vec::new();
            let mut refused = 0u64;
            let offset = period.map_or(Duration::ZERO, |p| {
                p.mul_f64(i as f64 / a.validators as f64)
            });
            let mut due = start + offset;
            let mut slot = 1u64;
            while due < end {
                if period.is_some() {
                    tokio::time::sleep_until(due.into()).await;
                }
                let sent = if period.is_some() {
                    due
                } else {
                    Instant::now()
                };
                let next = tower.apply_slots(&[slot], &policy).unwrap();
                let message = tower_sync_message(
                    &client.identity(),
                    vote_account,
                    vote_key,
                    &next,
                    [slot as u8; 32],
                    [1; 32],
                );
                match client.sign_vote(message, Vec::new()).await {
                    Ok(_) => {
                        latencies.push(sent.elapsed());
                        tower = next;
                    }
                    Err(_) => refused += 1,
                }
                slot += 1;
                due = match period {
                    Some(p) => due + p,
                    None => Instant::now(),
                };
            }
            (latencies, refused)
        }));
    }
    let mut all = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (l, r) = t.await.unwrap();
        all.extend(l);
        refused += r;
    }
    let elapsed = a.seconds as f64;
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "validators={} target_rate={} signed={} refused={} rate={:.0}/s p50={:.2}ms p99={:.2}ms max={:.2}ms",
        a.validators,
        if a.rate > 0.0 {
            format!("{}", a.rate)
        } else {
            "max".into()
        },
        all.len(),
        refused,
        all.len() as f64 / elapsed,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        all.last().unwrap().as_secs_f64() * 1e3,
    );
}
