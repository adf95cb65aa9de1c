//! Public ids: a type prefix and 20 base32 characters (100 bits) from an injected generator,
//! e.g. `camp_k3q9...`. Tests seed the generator and get the same ids every run.

use rand::{Rng, RngCore};

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new id `PREFIX_xxxxxxxxxxxxxxxxxxxx`.
pub fn new_id(rng: &mut impl RngCore, prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 21);
    s.push_str(prefix);
    s.push('_');
    let mut bits: u128 = rng.random();
    for _ in 0..20 {
        s.push(ALPHABET[(bits & 31) as usize] as char);
        bits >>= 5;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn seeded_ids_repeat() {
        let mut a = rand::rngs::StdRng::seed_from_u64(7);
        let mut b = rand::rngs::StdRng::seed_from_u64(7);
        let x = new_id(&mut a, "camp");
        assert_eq!(x, new_id(&mut b, "camp"));
        assert_eq!(x.len(), 25);
        assert_ne!(x, new_id(&mut a, "camp"));
    }
}
