//! Counts in words, for every output a person reads: "1 fault", "3 faults".

/// `count` and `noun`, the noun in the plural unless the count is one: a noun whose
/// plural is not the singular plus "s" is given as `"singular/plural"`
/// (`n(2, "key/keys")`, `n(1, "replica/replicas")`).
pub fn n(count: impl Into<u128>, noun: &str) -> String {
    let count = count.into();
    let (one, many) = match noun.split_once('/') {
        Some((one, many)) => (one.to_string(), many.to_string()),
        None => (noun.to_string(), format!("{noun}s")),
    };
    format!("{count} {}", if count == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::n;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(n(1u64, "fault"), "1 fault");
        assert_eq!(n(0u64, "fault"), "0 faults");
        assert_eq!(n(3u64, "kill"), "3 kills");
        assert_eq!(n(2u32, "process/processes"), "2 processes");
        assert_eq!(n(1u32, "process/processes"), "1 process");
    }
}
