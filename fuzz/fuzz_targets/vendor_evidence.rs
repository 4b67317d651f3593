//! Vendor attestation evidence as it arrives from the network or a file: a DCAP quote (with the
//! sample collateral, and as collateral itself), a Nitro document, an SEV-SNP report and VCEK.
//! None may panic; the vendor crates' parsers run on every input.
#![no_main]

use keyward_attest::{dcap, nitro, snp};
use libfuzzer_sys::fuzz_target;

const COLLATERAL: &[u8] = include_bytes!("../../core/attest/tests/data/tdx_quote_collateral.json");
const VCEK: &[u8] = include_bytes!("../../core/attest/tests/data/vcek_milan.der");

fuzz_target!(|data: &[u8]| {
    let _ = dcap::verify(data, COLLATERAL, 1_750_332_747);
    let _ = dcap::verify(data, data, 1_750_332_747);
    let _ = nitro::verify(data, 1_736_179_625);
    let _ = snp::verify(data, VCEK, 1_700_000_000);
    let _ = snp::verify(data, data, 1_700_000_000);
});
