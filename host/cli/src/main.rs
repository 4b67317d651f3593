//! `keyward`: the one binary. Host code: it reads and writes files and the terminal, and hands
//! everything secret to the trusted core crates under `core/`.
#![forbid(unsafe_code)]

mod attest;
mod devnet;
mod enclave;
mod error;
mod genesis;
mod keyfile;
mod keys;
mod ledger;
mod node;
mod sealing;
mod signer;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc instead of glibc's malloc, on which the signer's request and record buffers, passed
/// between threads, cost about 10 % of its votes a second (BENCHMARKS.md, "The allocator").
/// Secrets are zeroized before they are freed, whichever allocator holds them.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// keyward: TEE-backed key management for blockchain networks.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make, inspect and use keys of the key hierarchy.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Run a whole key-hierarchy network on loopback and walk through its story.
    Devnet(devnet::DevnetArgs),
    /// Write a network's genesis entry from a TOML description (council, parameters, and the
    /// evidence gatekeepers and workers must show), signed by a council member.
    Genesis(genesis::GenesisArgs),
    /// Run the ledger server (JSON-RPC on 127.0.0.1:8990 by default).
    Ledger(ledger::LedgerArgs),
    /// Run a gatekeeper: holds epoch secrets and provisions workers with ClusterKeys.
    Gatekeeper(node::NodeArgs),
    /// Run a worker: obtains its ClusterKey and runs its cluster's contracts.
    Worker(node::NodeArgs),
    /// A user's client: deploy contracts, send encrypted commands, read replies, check keys.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Run the enclave vote signer (JSON-RPC on 127.0.0.1:8989 by default).
    Signer(signer::SignerArgs),
    /// Run the isolated enclave runner: the trusted core of a signer (`--config`) or of a
    /// gatekeeper or worker (`--role`) in its own hardened process, reached over a Unix socket.
    Enclave(enclave::EnclaveArgs),
    /// Talk to a vote signer: the reference client.
    SignerClient(signer::ClientArgs),
    /// Export or import a stopped signer's towers (interchange JSON).
    #[command(subcommand)]
    SignerTower(signer::TowerCommand),
    /// Attestation: verify evidence offline (keyward's own, Intel DCAP, AWS Nitro, AMD SEV-SNP),
    /// or read this machine's TPM attestation key and quote its PCRs.
    #[command(subcommand)]
    Attest(attest::AttestCommand),
}

fn main() -> ExitCode {
    // A panic is a bug; still, say so in one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "error: internal error (please report): {}",
            info.payload_as_str().unwrap_or("panic")
        );
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(cmd) => keys::run(cmd),
        Command::Devnet(args) => devnet::run(args),
        Command::Ledger(args) => ledger::run(args),
        Command::Gatekeeper(args) => node::run(keyward_node_service::NodeRole::Gatekeeper, args),
        Command::Worker(args) => node::run(keyward_node_service::NodeRole::Worker, args),
        Command::User(cmd) => user::run(cmd),
        Command::Signer(args) => signer::run_signer(args),
        Command::Enclave(args) => enclave::run(args),
        Command::SignerClient(args) => signer::run_client(args),
        Command::SignerTower(cmd) => signer::run_tower(cmd),
        Command::Attest(cmd) => attest::run(cmd),
        Command::Genesis(args) => genesis::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
