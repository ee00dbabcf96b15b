//! The ABI's numeric codes: statuses, map types and buffer types.

/// `proxy_status_t`.
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// Not found.
    pub const NOT_FOUND: i32 = 1;
    /// Bad argument (e.g. an unknown cluster).
    pub const BAD_ARGUMENT: i32 = 2;
    /// Compare-and-swap mismatch.
    pub const CAS_MISMATCH: i32 = 8;
    /// Internal failure.
    pub const INTERNAL_FAILURE: i32 = 10;
    /// Not implemented by this host.
    pub const UNIMPLEMENTED: i32 = 12;
}

/// Map types of the ABI.
pub mod map {
    /// Request headers.
    pub const REQUEST_HEADERS: i32 = 0;
    /// Response headers.
    pub const RESPONSE_HEADERS: i32 = 2;
    /// Headers of an `http_call` response.
    pub const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
}

/// Buffer types of the ABI.
pub mod buffer {
    /// The downstream request's body.
    pub const HTTP_REQUEST_BODY: i32 = 0;
    /// Body of an `http_call` response.
    pub const HTTP_CALL_RESPONSE_BODY: i32 = 4;
    /// VM configuration.
    pub const VM_CONFIGURATION: i32 = 6;
    /// Plugin configuration.
    pub const PLUGIN_CONFIGURATION: i32 = 7;
}
