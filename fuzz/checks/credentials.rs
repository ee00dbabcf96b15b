//! Credential extraction over arbitrary headers and paths: never panics, and
//! whatever it accepts is one of the credential shapes.

/// One input: panics on a failed property, like the fuzz target.
pub fn run(data: &[u8]) {
    // Split the input into a path and up to eight header name/value pairs.
    let mut parts = data.split(|b| *b == b'\n');
    let path = parts
        .next()
        .and_then(|p| std::str::from_utf8(p).ok())
        .unwrap_or("/");
    let raw: Vec<(&[u8], &[u8])> = parts
        .take(8)
        .filter_map(|line| {
            let at = line.iter().position(|b| *b == b':')?;
            Some((line.get(..at)?, line.get(at + 1..)?))
        })
        .collect();
    let headers: Vec<(&str, &[u8])> = raw
        .iter()
        .filter_map(|(n, v)| Some((std::str::from_utf8(n).ok()?, *v)))
        .collect();
    let request = erpgate::Request::new("GET", path, &headers);
    let _ = erpgate::credential::extract(&request);
}
