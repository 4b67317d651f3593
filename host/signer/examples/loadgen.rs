//! Load generator for the vote signer: many validators, each voting on its own fork of
//! consecutive slots, over JSON-RPC on HTTP/1.1 keep-alive, against a signer with durability on.
//!
//! ```text
//! cargo run --release -p keyward-signer --example loadgen -- [--url URL] [--validators N]
//!     [--votes TOTAL | --seconds S --rate VOTES_PER_SECOND]
//! ```
//!
//! Every request is built and signed by the validator's identity *before* the clock starts, so
//! the figures measure the signer, not the load generator's own Ed25519 signing (it shares the
//! machine's cores). Each validator has one connection and one request in flight; all of them
//! are driven by one thread, as if they were on other machines.
//!
//! Without `--url` it starts a signer in-process on a fresh data directory under the system
//! temp dir (redb, fsync on every commit). Without `--rate` it sends `--votes` requests
//! (default 100,000) as fast as the signer answers and reports the rate. With `--rate` it sends
//! `rate × seconds` requests spread evenly and measures latency from each request's scheduled
//! time, so a stalled signer cannot hide its queueing (no coordinated omission). On Linux it
//! also reports `steal`: the share of the machine's CPU time its hypervisor gave to others
//! during the load, which the latency tail follows on a shared host (docs/BENCHMARKS.md), and
//! the processor's model, since the host's machines are not all of one kind.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

use keyward_crypto::{SecretBytes, SolanaKeypair, SolanaPubkey};
use keyward_signer::client::Client;
use keyward_signer::config::Config;
use keyward_signer::service::Service;
use keyward_signer::votes::tower_sync_message;
use keyward_signer::wire::SignedParams;
use keyward_vote::{LockoutPolicy, Payload, Tower};
use rand_core::OsRng;

struct Args {
    url: Option<String>,
    validators: usize,
    votes: usize,
    seconds: f64,
    rate: Option<f64>,
}

fn args() -> Args {
    let mut a = Args {
        url: None,
        validators: 64,
        votes: 100_000,
        seconds: 10.0,
        rate: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--url" => a.url = Some(value()),
            "--validators" => a.validators = count(&flag, &value()),
            "--votes" => a.votes = count(&flag, &value()),
            "--seconds" => a.seconds = positive(&flag, &value()),
            "--rate" => a.rate = Some(positive(&flag, &value())),
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    if let Some(rate) = a.rate {
        a.votes = (rate * a.seconds) as usize;
    }
    if a.votes == 0 {
        usage("no votes to send: raise --votes, or --rate × --seconds");
    }
    a
}

const USAGE: &str = "usage: loadgen [--url URL] [--validators N] \
                     [--votes TOTAL | --seconds S --rate VOTES_PER_SECOND]";

/// Prints what is wrong and the usage line, and exits with status 2.
fn usage(problem: &str) -> ! {
    eprintln!("loadgen: {problem}\n{USAGE}");
    std::process::exit(2)
}

/// `value` as the positive count `flag` takes, or the usage line.
fn count(flag: &str, value: &str) -> usize {
    match value.parse() {
        Ok(n) if n > 0 => n,
        _ => usage(&format!("{flag} {value}: not a positive whole number")),
    }
}

/// `value` as the positive, finite number `flag` takes, or the usage line.
fn positive(flag: &str, value: &str) -> f64 {
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => n,
        _ => usage(&format!("{flag} {value}: not a positive number")),
    }
}

/// The full HTTP/1.1 request for one signed vote of `client`.
fn http_request(host: &str, client: &Client, id: usize, payload: Payload) -> Vec<u8> {
    let params = SignedParams::from_request(&client.sign(payload));
    let body = serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0", "id": id, "method": "signVote", "params": params,
    }))
    .unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// Reads one HTTP response and returns whether its JSON-RPC answer is a result.
async fn read_response(reader: &mut BufReader<OwnedReadHalf>, body: &mut Vec<u8>) -> bool {
    let mut line = String::new();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    body.resize(length, 0);
    reader.read_exact(body).await.unwrap();
    body.windows(9).any(|w| w == b"\"result\":")
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
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();

    // Register every validator and build all its requests before the clock starts.
    let per_validator = a.votes.div_ceil(a.validators);
    let policy = LockoutPolicy::SOLANA;
    let mut plans = Vec::new();
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
        let mut tower = Tower::new();
        let mut requests = Vec::with_capacity(per_validator);
        for slot in 1..=per_validator as u64 {
            tower = tower.apply_slots(&[slot], &policy).unwrap();
            let message = tower_sync_message(
                &client.identity(),
                &vote_account,
                &vote_key,
                &tower,
                [slot as u8; 32],
                [1; 32],
            );
            let payload = Payload::SignVote {
                message,
                evidence: Vec::new(),
            };
            requests.push(http_request(&host, &client, slot as usize, payload));
        }
        plans.push(requests);
    }

    let period = a
        .rate
        .map(|rate| Duration::from_secs_f64(a.validators as f64 / rate));
    let start = Instant::now() + Duration::from_millis(100);
    let cpu_before = cpu_ticks();
    // For profiling: the setup (registering, signing every request) ends here.
    eprintln!("load starts");
    let validators = a.validators;
    let load = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let tasks: Vec<_> = plans
                .into_iter()
                .enumerate()
                .map(|(i, requests)| {
                    let host = host.clone();
                    tokio::spawn(async move {
                        let stream = TcpStream::connect(&host).await.unwrap();
                        stream.set_nodelay(true).unwrap();
                        let (reader, mut writer) = stream.into_split();
                        let mut reader = BufReader::new(reader);
                        let mut body = Vec::new();
                        let mut latencies = Vec::with_capacity(requests.len());
                        let mut refused = 0u64;
                        let mut due = start
                            + period.map_or(Duration::ZERO, |p| {
                                p.mul_f64(i as f64 / validators as f64)
                            });
                        tokio::time::sleep_until(due.into()).await;
                        for request in &requests {
                            let sent = if let Some(p) = period {
                                tokio::time::sleep_until(due.into()).await;
                                let sent = due;
                                due += p;
                                sent
                            } else {
                                Instant::now()
                            };
                            writer.write_all(request).await.unwrap();
                            if read_response(&mut reader, &mut body).await {
                                latencies.push(sent.elapsed());
                            } else {
                                if refused == 0 {
                                    eprintln!("first refusal: {}", String::from_utf8_lossy(&body));
                                }
                                refused += 1;
                            }
                        }
                        (latencies, refused, Instant::now())
                    })
                })
                .collect();
            let mut results = Vec::new();
            for t in tasks {
                results.push(t.await.unwrap());
            }
            results
        })
    });
    let mut all = Vec::new();
    let mut refused = 0;
    let mut finished = start;
    for (l, r, done) in load.join().unwrap() {
        all.extend(l);
        refused += r;
        finished = finished.max(done);
    }
    let elapsed = finished.duration_since(start).as_secs_f64();
    // Time the hypervisor gave this machine's vCPUs to others: the latency tail follows it.
    let steal = match (cpu_before, cpu_ticks()) {
        (Some((steal0, all0)), Some((steal1, all1))) if all1 > all0 => format!(
            " steal={:.1}%",
            100.0 * steal1.saturating_sub(steal0) as f64 / (all1 - all0) as f64
        ),
        _ => String::new(),
    };
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "validators={} target_rate={} signed={} refused={} elapsed={:.2}s rate={:.0}/s p50={:.2}ms p99={:.2}ms max={:.2}ms{steal} cpu={:?}",
        a.validators,
        a.rate.map_or("max".into(), |r| r.to_string()),
        all.len(),
        refused,
        elapsed,
        all.len() as f64 / elapsed,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        all.last().unwrap().as_secs_f64() * 1e3,
        cpu_model(),
    );
}

/// The processor's model name from Linux's `/proc/cpuinfo`: this shared host's machines are not
/// all the same kind, and figures are only comparable on one.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or_else(|| "unknown".into(), |(_, model)| model.trim().into())
}

/// The machine's (steal, total) CPU ticks from Linux's `/proc/stat`, or `None` elsewhere.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal; guest time is already within user.
    Some((*ticks.get(7)?, ticks.iter().take(8).sum()))
}
