//! `keyward keys`: make key files, derive the hierarchy from a MasterKey, and encrypt to and
//! decrypt by a contract key.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use rand_core::OsRng;
use serde_json::{Value, json};

use crate::{
    error::{CliError, Result},
    keyfile::{KeyFile, read_limited, write_file},
};
use keyward_crypto::{
    ChannelPublicKey, Envelope, IdentityKeypair, IdentityPublicKey, IdentitySignature,
    SolanaKeypair,
    hex::{from_hex, to_0x},
};
use keyward_hierarchy::{
    ClusterId, ClusterKey, ClusterKeyRequest, ContractContext, ContractId, ContractKey,
    ContractPublicKeys, Epoch, EpochRecord, Generation, MasterKey,
};
use keyward_threshold::{BlindedRequest, ShareIndex};

mod demo;

/// Largest file `encrypt` reads (the envelope limit).
const MAX_PLAINTEXT: u64 = keyward_crypto::envelope::MAX_PLAINTEXT_LEN as u64;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key and write it to a new file (mode 0600).
    New {
        /// What kind of key.
        #[arg(long, value_enum, default_value_t = Kind::Sr25519)]
        kind: Kind,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print a key file's kind and public key.
    Show {
        /// The key file.
        file: PathBuf,
    },
    /// Derive ClusterKey and ContractKey public keys from a MasterKey, printed as JSON.
    Derive(DeriveArgs),
    /// Encrypt a file to a contract (the JSON printed by `derive --contract`).
    Encrypt {
        /// The contract's public keys: the JSON `keyward keys derive --contract ID` prints.
        #[arg(long)]
        to: PathBuf,
        /// The sender's sr25519 identity key file; the envelope is signed by it.
        #[arg(long)]
        identity: PathBuf,
        /// The cluster's sr25519 key (0x-hex) as you know it from a source you trust; the
        /// contract's keys must be certified by it. Without it, the key in `--to` is trusted
        /// as-is, and a warning says so.
        #[arg(long)]
        cluster_key: Option<String>,
        /// The plaintext file.
        #[arg(long = "in")]
        input: PathBuf,
        /// Where to write the envelope.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// Decrypt an envelope with the contract key derived from a MasterKey.
    Decrypt {
        /// The MasterKey file of the envelope's epoch.
        #[arg(long)]
        master: PathBuf,
        /// The envelope file.
        #[arg(long = "in")]
        input: PathBuf,
        /// Where to write the plaintext (mode 0600).
        #[arg(long)]
        out: PathBuf,
        /// Refuse unless the envelope was signed by this sr25519 key (0x-hex).
        #[arg(long)]
        expect_sender: Option<String>,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// Walk through the whole hierarchy in memory, checking each security claim on the way.
    Demo,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// sr25519 identity key (users, workers, gatekeepers).
    Sr25519,
    /// ed25519 key in Solana's keypair-file format.
    Ed25519,
    /// A MasterKey (ristretto255 scalar) for one epoch.
    Master,
}

#[derive(Debug, Args)]
pub struct DeriveArgs {
    /// The MasterKey file.
    #[arg(long)]
    master: PathBuf,
    /// The MasterKey's epoch.
    #[arg(long)]
    epoch: u64,
    /// The cluster id.
    #[arg(long)]
    cluster: String,
    /// The cluster generation.
    #[arg(long, default_value_t = 0)]
    generation: u64,
    /// Also derive this contract's keys.
    #[arg(long)]
    contract: Option<String>,
    /// Include the secret keys in the output. They are secrets: do not paste them anywhere.
    #[arg(long)]
    reveal_secrets: bool,
}

pub fn run(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::New { kind, out, force } => new(kind, &out, force),
        KeysCommand::Show { file } => {
            let key = KeyFile::read(&file)?;
            print_json(&json!({ "kind": key.kind(), "public": key.public() }));
            Ok(())
        }
        KeysCommand::Derive(args) => {
            print_json(&derive(&args)?);
            Ok(())
        }
        KeysCommand::Encrypt {
            to,
            identity,
            cluster_key,
            input,
            out,
            force,
        } => encrypt(&to, &identity, cluster_key.as_deref(), &input, &out, force),
        KeysCommand::Decrypt {
            master,
            input,
            out,
            expect_sender,
            force,
        } => decrypt(&master, &input, &out, expect_sender.as_deref(), force),
        KeysCommand::Demo => demo::run(),
    }
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values serialize")
    );
}

fn new(kind: Kind, out: &Path, force: bool) -> Result<()> {
    let key = match kind {
        Kind::Sr25519 => KeyFile::Sr25519(IdentityKeypair::generate(&mut OsRng)),
        Kind::Ed25519 => KeyFile::Ed25519(SolanaKeypair::generate(&mut OsRng)),
        Kind::Master => KeyFile::Master(MasterKey::generate(&mut OsRng)),
    };
    key.write(out, force)?;
    print_json(&json!({ "kind": key.kind(), "public": key.public(), "file": out }));
    Ok(())
}

fn derive(args: &DeriveArgs) -> Result<Value> {
    let master = KeyFile::read(&args.master)?.into_master(&args.master)?;
    let cluster = ClusterId::new(&args.cluster).map_err(CliError::refused)?;
    let contract = args
        .contract
        .as_deref()
        .map(ContractId::new)
        .transpose()
        .map_err(CliError::refused)?;
    let (epoch, generation) = (Epoch(args.epoch), Generation(args.generation));

    // The provisioning protocol, run locally: the worker names (epoch, cluster, generation), the
    // gatekeeper (here, this MasterKey in classic mode) evaluates that public input with a DLEQ
    // proof, and the worker checks the proof against the master public key and finishes.
    let gatekeeper = ShareIndex::new(1).expect("1 is nonzero");
    let committee = master
        .classic_committee([gatekeeper])
        .map_err(CliError::refused)?;
    let record = EpochRecord::new(
        epoch,
        committee,
        [(gatekeeper, IdentityKeypair::generate(&mut OsRng).public())].into(),
    )
    .map_err(CliError::refused)?;
    let request = ClusterKeyRequest {
        epoch,
        cluster: cluster.clone(),
        generation,
    };
    let share = master.classic_share(gatekeeper);
    let partial = request.evaluate(&share, &mut OsRng);
    let (cluster_key, _) = request
        .finish(&record, &[partial])
        .map_err(CliError::refused)?;

    // The evaluation above is key material (one public hash away from the ClusterKey), so it is
    // never printed. What is printed is the same evaluation on a *blinded* element: anyone can
    // check its DLEQ proof against the master public key (RFC 9497 VerifyProof), and without
    // the blind it reveals nothing. Its finalized output must equal the provisioning path's.
    let blinded = BlindedRequest::new(&request.input(), &mut OsRng).map_err(CliError::refused)?;
    let public_partial = share.evaluate(&blinded.blinded(), &mut OsRng);
    let committee = record.committee();
    let (blinded_output, _) = blinded
        .finalize_threshold(committee, &[public_partial])
        .map_err(CliError::refused)?;
    let (direct_output, _) = committee
        .evaluate_input(&request.input(), &[partial])
        .map_err(CliError::refused)?;
    if blinded_output != direct_output {
        return Err(CliError::refused("blinded and direct evaluations disagree"));
    }

    let mut out = json!({
        "epoch": epoch.0,
        "cluster": cluster.as_str(),
        "generation": generation.0,
        "masterPublicKey": master.public_key().to_string(),
        "clusterKey": {
            "sr25519": cluster_key.identity().public().to_string(),
            "x25519": cluster_key.channel().public().to_string(),
        },
        "evaluation": {
            "input": to_0x(&request.input()),
            "blindedElement": to_0x(&blinded.blinded().to_bytes()),
            "evaluatedElement": to_0x(&public_partial.evaluated.to_bytes()),
            "proof": to_0x(&public_partial.proof.to_bytes()),
            "proofVerified": true,
        },
    });
    let contract_key = contract.map(|c| ContractKey::derive(&cluster_key, c));
    if let Some(key) = &contract_key {
        let public = ContractPublicKeys::certify(&cluster_key, key, &mut OsRng);
        out["contract"] = json!({
            "id": public.context.contract.as_str(),
            "sr25519": public.sr25519.to_string(),
            "x25519": public.x25519.to_string(),
            "clusterSignature": to_0x(&public.signature.to_bytes()),
        });
    }
    if args.reveal_secrets {
        out["secrets"] = json!({
            "masterKey": to_0x(master.to_bytes().expose()),
            "clusterSeed": to_0x(cluster_key.seed().expose()),
            "clusterX25519": to_0x(cluster_key.channel().secret_bytes().expose()),
        });
        if let Some(key) = &contract_key {
            out["secrets"]["contractSr25519Seed"] = json!(to_0x(key.identity().seed().expose()));
            out["secrets"]["contractX25519"] = json!(to_0x(key.channel().secret_bytes().expose()));
        }
    }
    Ok(out)
}

/// Rebuilds a contract's certified public keys from `derive`'s JSON (checked when used).
fn contract_public_keys(path: &Path) -> Result<ContractPublicKeys> {
    let bytes = read_limited(path, 64 * 1024)?;
    let bad = |reason: &str| CliError::bad_file(path, reason);
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad("not JSON"))?;
    let text = |pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&format!("missing {pointer}")))
    };
    let number = |pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_u64)
            .ok_or_else(|| bad(&format!("missing {pointer}")))
    };
    let context = ContractContext {
        epoch: Epoch(number("/epoch")?),
        cluster: ClusterId::new(text("/cluster")?).map_err(|e| bad(&e.to_string()))?,
        generation: Generation(number("/generation")?),
        contract: ContractId::new(text("/contract/id")?).map_err(|e| bad(&e.to_string()))?,
    };
    let hex_field = |pointer: &str| -> Result<[u8; 32]> {
        from_hex::<32>("key", text(pointer)?).map_err(|e| bad(&format!("{pointer}: {e}")))
    };
    let sr25519 = IdentityPublicKey::from_bytes(&hex_field("/contract/sr25519")?)
        .map_err(|e| bad(&e.to_string()))?;
    let cluster_key = IdentityPublicKey::from_bytes(&hex_field("/clusterKey/sr25519")?)
        .map_err(|e| bad(&e.to_string()))?;
    let x25519 = ChannelPublicKey(hex_field("/contract/x25519")?);
    let signature = from_hex::<64>("clusterSignature", text("/contract/clusterSignature")?)
        .and_then(|b| IdentitySignature::from_bytes(&b))
        .map_err(|e| bad(&e.to_string()))?;
    Ok(ContractPublicKeys {
        context,
        sr25519,
        x25519,
        cluster_key,
        signature,
    })
}

fn parse_sr25519(flag: &str, text: &str) -> Result<IdentityPublicKey> {
    from_hex::<32>("sr25519 key", text)
        .and_then(|b| IdentityPublicKey::from_bytes(&b))
        .map_err(|e| CliError::refused(format!("{flag}: {e}")))
}

fn encrypt(
    to: &Path,
    identity: &Path,
    cluster_key: Option<&str>,
    input: &Path,
    out: &Path,
    force: bool,
) -> Result<()> {
    let contract = contract_public_keys(to)?;
    let trusted = match cluster_key {
        Some(text) => parse_sr25519("--cluster-key", text)?,
        None => {
            eprintln!(
                "warning: trusting the cluster key in {}; pass --cluster-key to check it",
                to.display()
            );
            contract.cluster_key
        }
    };
    let sender = KeyFile::read(identity)?.into_identity(identity)?;
    let plaintext = read_limited(input, MAX_PLAINTEXT)?;
    let envelope = contract
        .encrypt_input(&trusted, &sender, &plaintext, &mut OsRng)
        .map_err(CliError::refused)?;
    write_file(out, &envelope.to_bytes(), force, 0o644)?;
    print_json(&json!({
        "envelope": out,
        "contract": contract.context.contract.as_str(),
        "epoch": contract.context.epoch.0,
        "cluster": contract.context.cluster.as_str(),
        "generation": contract.context.generation.0,
        "sender": sender.public().to_string(),
        "bytes": plaintext.len(),
    }));
    Ok(())
}

fn decrypt(
    master: &Path,
    input: &Path,
    out: &Path,
    expect_sender: Option<&str>,
    force: bool,
) -> Result<()> {
    let expected = expect_sender
        .map(|s| parse_sr25519("--expect-sender", s))
        .transpose()?;
    let master_key = KeyFile::read(master)?.into_master(master)?;
    let bytes = read_limited(input, MAX_PLAINTEXT + 64 * 1024 + 512)?;
    let envelope = Envelope::from_bytes(&bytes).map_err(|e| CliError::bad_file(input, e))?;
    let context = ContractContext::from_bytes(envelope.aad())
        .map_err(|e| CliError::bad_file(input, format!("not a contract input: {e}")))?;
    let cluster = ClusterKey::derive(
        &master_key,
        context.epoch,
        context.cluster.clone(),
        context.generation,
    );
    let contract = ContractKey::derive(&cluster, context.contract.clone());
    let opened = contract
        .open_input(&envelope)
        .map_err(|e| CliError::bad_file(input, e))?;
    if let Some(expected) = expected
        && opened.sender != expected
    {
        return Err(CliError::refused(format!(
            "envelope was signed by {}, not by the expected sender {expected}",
            opened.sender
        )));
    }
    write_file(out, &opened.plaintext, force, 0o600)?;
    print_json(&json!({
        "plaintext": out,
        "contract": context.contract.as_str(),
        "epoch": context.epoch.0,
        "cluster": context.cluster.as_str(),
        "generation": context.generation.0,
        "sender": opened.sender.to_string(),
        "bytes": opened.plaintext.len(),
    }));
    Ok(())
}
