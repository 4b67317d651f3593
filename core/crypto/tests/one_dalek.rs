//! DESIGN.md §2: the whole tree holds exactly one curve25519-dalek, version 4.1.3. A second
//! generation would make `RistrettoPoint`s from different crates incompatible types.

#[test]
fn lock_file_holds_one_curve25519_dalek() {
    let lock = include_str!("../../../Cargo.lock");
    let versions: Vec<&str> = lock
        .split("[[package]]")
        .filter(|p| p.contains("name = \"curve25519-dalek\""))
        .filter_map(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .collect();
    assert_eq!(
        versions,
        ["\"4.1.3\""],
        "curve25519-dalek versions in Cargo.lock"
    );
}
